package auth

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestParseForms(t *testing.T) {
	page := `<html><body>
<form method="get" action="/search"><input name="q"></form>
<FORM ID="recaptcha_form" METHOD="POST">
 <input type="hidden" name="csrfmiddlewaretoken" value="tok&amp;en">
 <input type="hidden" name="next" value="/o/authorize/?response_type=code&amp;state=s">
 <input type="email" name="email" value="">
 <input type="password" name="password">
 <input type="checkbox" name="remember">
 <input type="checkbox" name="terms" value="yes" checked>
 <textarea name="note">line &lt;1&gt;</textarea>
 <select name="lang"><option value="cs">cs</option><option value="en" selected>en</option></select>
 <select name="first"><option value="a"><option value="b"></select>
 <input type="submit" name="go" value="Log in">
 <button name="b" value="1">x</button>
 <input name="dup" value="1" value="2">
</FORM>
<input name="outside" value="x">
</body></html>`
	forms, err := ParseForms(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(forms) != 2 {
		t.Fatalf("%d forms, want 2", len(forms))
	}
	f := forms[1]
	if f.ID != "recaptcha_form" || f.Method != "post" || f.Action != "" || !f.HasPassword() || f.IsTOTP() {
		t.Fatalf("form = %+v", f)
	}
	want := url.Values{
		"csrfmiddlewaretoken": {"tok&en"},
		"next":                {"/o/authorize/?response_type=code&state=s"},
		"email":               {""},
		"password":            {""},
		"terms":               {"yes"},
		"note":                {"line <1>"},
		"lang":                {"en"},
		"first":               {"a"},
		"dup":                 {"1"},
	}
	if got := f.Values(); !reflect.DeepEqual(got, want) {
		t.Fatalf("values:\n got %v\nwant %v", got, want)
	}
	page2, _ := url.Parse("https://account.prusa3d.com/login/?next=x#frag")
	if u, _ := f.ActionURL(page2); u.String() != "https://account.prusa3d.com/login/?next=x" {
		t.Fatalf("empty action resolves to %s", u)
	}
	if u, _ := forms[0].ActionURL(page2); u.String() != "https://account.prusa3d.com/search" {
		t.Fatalf("relative action resolves to %s", u)
	}
}

func TestParseFormsTOTP(t *testing.T) {
	for _, in := range []string{`<input type="text" name="code" autocomplete="one-time-code">`, `<input name="otp_token">`} {
		forms, _ := ParseForms(strings.NewReader(`<form method="post">` + in + `</form>`))
		if len(forms) != 1 || !forms[0].IsTOTP() {
			t.Errorf("%s: not seen as a TOTP form", in)
		}
	}
}

// TestTOTPFieldPrefersANamedOne: unnamed boxes for the digits beside a
// named field: the code goes in the named one.
func TestTOTPFieldPrefersANamedOne(t *testing.T) {
	forms, _ := ParseForms(strings.NewReader(`<form method="post"><input autocomplete="one-time-code" maxlength="1"><input autocomplete="one-time-code" maxlength="1"><input type="hidden" name="otp_token"></form>`))
	if len(forms) != 1 || forms[0].totpField() != 2 {
		t.Fatalf("the code field of %d forms: want the named one, index 2", len(forms))
	}
}

func TestParseFormsLimits(t *testing.T) {
	if _, err := ParseForms(strings.NewReader("<form>" + strings.Repeat("<input name=a>", maxFormFields+1))); err != errTooManyFields {
		t.Fatalf("err = %v, want errTooManyFields", err)
	}
	if _, err := ParseForms(strings.NewReader(strings.Repeat("<form></form>", maxForms+1))); err != errTooManyFields {
		t.Fatalf("err = %v, want errTooManyFields", err)
	}
}
