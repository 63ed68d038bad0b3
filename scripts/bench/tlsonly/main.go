// Command tlsonly is hello-world that links (but does not call) crypto/tls
// and net: what any Go program able to refresh a token over HTTPS pays at
// start-up, before any other library.
package main

import (
	"crypto/tls"
	"net"
	"os"
)

func main() {
	if len(os.Args) > 99 { // never: keeps the libraries linked
		c, _ := net.Dial("tcp", os.Args[1])
		tls.Client(c, &tls.Config{ServerName: os.Args[2]}).Handshake()
	}
	os.Stdout.WriteString("hello\n")
}
