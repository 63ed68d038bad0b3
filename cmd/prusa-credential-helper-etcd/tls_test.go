package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/prusa-credential-helper/prusa-credential-helper/helper"
)

// pki writes a CA and certificates it signs, as PEM files in dir.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

func newPKI(t *testing.T) *pki {
	p := &pki{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serial = 1
	return p
}

func (p *pki) write(t *testing.T, name, kind string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes name.pem and name-key.pem, a certificate for 127.0.0.1.
func (p *pki) issue(t *testing.T, name string, usage x509.ExtKeyUsage) (cert, key string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &k.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "PRIVATE KEY", kder)
}

// TestTLS: an etcd that serves TLS only and wants client certificates,
// reached with PRUSA_ETCD_CACERT, PRUSA_ETCD_CERT and PRUSA_ETCD_KEY.
func TestTLS(t *testing.T) {
	p := newPKI(t)
	srvCert, srvKey := p.issue(t, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := p.issue(t, "client", x509.ExtKeyUsageClientAuth)
	ca := filepath.Join(p.dir, "ca.pem")

	cfg := embed.NewConfig()
	cfg.Name = "tls"
	cfg.Dir = t.TempDir()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cu := url.URL{Scheme: "https", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: srvCert, KeyFile: srvKey, TrustedCAFile: ca, ClientCertAuth: true}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		t.Fatal("etcd did not become ready")
	}

	k := newTokens(t)
	s := newStores(t, []string{cu.Host})
	ctx := ctxFor(t, 30*time.Second)
	h := s.host()
	h.Settings = helper.EtcdSettings{CACert: ca, Cert: cliCert, Key: cliKey}
	set := s.secret(k.set(2 * time.Hour))
	if _, err := h.Set(ctx, "default", set); err != nil {
		t.Fatalf("set over tls: %v", err)
	}
	unlock, err := h.Lock(ctx, "default")
	if err != nil {
		t.Fatalf("lock over tls: %v", err)
	}
	got, _, err := h.Get(ctx, "default")
	if err != nil {
		t.Fatalf("get over tls: %v", err)
	}
	sameSet(t, got, set)
	unlock()

	// Without a client certificate, the server refuses the handshake;
	// without the CA, the client refuses the server. Neither is a missing
	// profile.
	// The message says which.
	for name, tc := range map[string]struct {
		settings helper.EtcdSettings
		why      string
	}{
		"no client certificate": {helper.EtcdSettings{CACert: ca}, "certificate required"},
		"no ca":                 {helper.EtcdSettings{Cert: cliCert, Key: cliKey}, "certificate signed by unknown authority"},
	} {
		other := s.host()
		other.Settings = tc.settings
		_, _, err := other.Get(ctxFor(t, 3*time.Second), "default")
		if !errors.Is(err, helper.ErrStoreUnreachable) {
			t.Errorf("%s: %v, want ErrStoreUnreachable", name, err)
		} else if msg := err.Error(); !strings.Contains(msg, tc.why) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %q, want one line saying %q", name, msg, tc.why)
		}
	}
}
