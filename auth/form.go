package auth

import (
	"errors"
	"io"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Limits on what ParseForms reads from a page, so that a hostile or broken
// server cannot make the helper use unbounded memory.
const (
	maxFormFields = 1000
	maxForms      = 100
)

// errTooManyFields is returned by ParseForms for a page over the limits.
var errTooManyFields = errors.New("page has too many forms or form fields")

// Form is an HTML form: where it posts and every field it would submit.
type Form struct {
	ID     string
	Method string // lower-case; "get" when absent
	Action string // as written; empty means the page's own URL
	Fields []Field
}

// Field is one control of a form.
type Field struct {
	Name         string
	Type         string // lower-case input type ("text" when absent); "textarea" or "select" for those
	Value        string
	Autocomplete string
	Checked      bool
}

// HasPassword reports whether the form has a password input.
func (f *Form) HasPassword() bool {
	for _, fl := range f.Fields {
		if fl.Type == "password" {
			return true
		}
	}
	return false
}

// IsTOTP reports whether the form asks for a one-time code: an input with
// autocomplete="one-time-code" or named otp_token.
func (f *Form) IsTOTP() bool { return f.totpField() >= 0 }

// totpField is the index of the field for the code: a named one first,
// as a page may show unnamed boxes for the digits beside it.
func (f *Form) totpField() int {
	found := -1
	for i, fl := range f.Fields {
		if fl.Autocomplete == "one-time-code" || fl.Name == "otp_token" {
			if fl.Name != "" {
				return i
			}
			if found < 0 {
				found = i
			}
		}
	}
	return found
}

// Values returns what a browser would submit: every named field, hidden
// ones included, except unchecked boxes and buttons.
func (f *Form) Values() url.Values {
	v := url.Values{}
	for _, fl := range f.Fields {
		if fl.Name == "" {
			continue
		}
		switch fl.Type {
		case "submit", "button", "image", "reset", "file":
			continue
		case "checkbox", "radio":
			if !fl.Checked {
				continue
			}
			if fl.Value == "" {
				fl.Value = "on"
			}
		}
		v.Add(fl.Name, fl.Value)
	}
	return v
}

// ActionURL resolves the form's action against the page's URL (an empty
// action posts to the page itself, as a browser does).
func (f *Form) ActionURL(page *url.URL) (*url.URL, error) {
	if strings.TrimSpace(f.Action) == "" {
		u := *page
		u.Fragment = ""
		return &u, nil
	}
	return page.Parse(strings.TrimSpace(f.Action))
}

// ParseForms reads every form of an HTML page, with the fields inside each
// (input, textarea, select). It uses the HTML5 tokenizer, so that malformed
// or deeply nested markup costs no more than its length.
func ParseForms(r io.Reader) ([]Form, error) {
	z := html.NewTokenizer(r)
	var (
		forms    []Form
		cur      *Form
		fields   int
		textarea = -1 // index in cur.Fields of the open textarea
		sel      = -1 // index in cur.Fields of the open select
		selFirst string
		selHas   bool // the open select has a selected option
	)
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if err := z.Err(); err != io.EOF {
				return forms, err
			}
			return forms, nil
		case html.TextToken:
			if cur != nil && textarea >= 0 {
				cur.Fields[textarea].Value += string(z.Text())
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				key := string(k)
				if _, dup := attrs[key]; !dup { // the first of duplicate attributes wins, as in browsers
					attrs[key] = string(v)
				}
			}
			switch a {
			case atom.Form:
				if cur != nil { // forms do not nest: the inner start tag is ignored
					continue
				}
				if len(forms) >= maxForms {
					return forms, errTooManyFields
				}
				method := strings.ToLower(attrs["method"])
				if method == "" {
					method = "get"
				}
				forms = append(forms, Form{ID: attrs["id"], Method: method, Action: attrs["action"]})
				cur = &forms[len(forms)-1]
			case atom.Input, atom.Textarea, atom.Select, atom.Button:
				if cur == nil {
					continue
				}
				if fields++; fields > maxFormFields {
					return forms, errTooManyFields
				}
				f := Field{Name: attrs["name"], Value: attrs["value"], Autocomplete: strings.ToLower(attrs["autocomplete"])}
				_, f.Checked = attrs["checked"]
				switch a {
				case atom.Input:
					f.Type = strings.ToLower(attrs["type"])
					if f.Type == "" {
						f.Type = "text"
					}
				case atom.Button:
					f.Type = "button"
				case atom.Textarea:
					f.Type = "textarea"
					f.Value = ""
				case atom.Select:
					f.Type = "select"
					f.Value = ""
				}
				cur.Fields = append(cur.Fields, f)
				if a == atom.Textarea && tt == html.StartTagToken {
					textarea = len(cur.Fields) - 1
				}
				if a == atom.Select && tt == html.StartTagToken {
					sel, selFirst, selHas = len(cur.Fields)-1, "", false
				}
			case atom.Option:
				if cur != nil && sel >= 0 {
					v := attrs["value"] // an option's text as its value is not needed by any known page
					_, selected := attrs["selected"]
					if selected && !selHas {
						cur.Fields[sel].Value, selHas = v, true
					}
					if selFirst == "" {
						selFirst = v
					}
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch atom.Lookup(name) {
			case atom.Form:
				cur, textarea, sel = nil, -1, -1
			case atom.Textarea:
				textarea = -1
			case atom.Select:
				if cur != nil && sel >= 0 && !selHas {
					cur.Fields[sel].Value = selFirst
				}
				sel = -1
			}
		}
	}
}
