package key

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestRoundTripAndPublic(t *testing.T) {
	p, err := NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParsePrivate(p.Text())
	if err != nil {
		t.Fatal(err)
	}
	if !p.Equal(q) {
		t.Fatal("private key changed in a text round trip")
	}
	pub, err := ParsePublic(p.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(q.Public()) {
		t.Fatal("public key changed in a text round trip")
	}
	other, _ := NewPrivate()
	if other.Public().Equal(pub) || other.Equal(p) {
		t.Fatal("two fresh keys compare equal")
	}
}

// A vector from wg(8): `echo yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk= | wg pubkey`.
func TestKnownVector(t *testing.T) {
	p, err := ParsePrivate("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Public().String(), "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="; got != want {
		t.Fatalf("public key = %s, want %s", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "want 44 base64 characters, got 0"},
		{"abc", "want 44 base64 characters, got 3"},
		{strings.Repeat("!", 44), "not standard base64"},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "all zeros"},
		{strings.Repeat("A", 43) + "B", "decodes to 33 bytes"},
		{"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykx=", "not standard base64"}, // non-canonical padding bits
	} {
		if _, err := ParsePublic(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePublic(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
		if _, err := ParsePrivate(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePrivate(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestPrivateNeverPrints(t *testing.T) {
	p, _ := NewPrivate()
	secret := p.Text()
	type holder struct{ K Private }
	for _, s := range []string{
		p.String(),
		fmt.Sprint(p), fmt.Sprintf("%v %s %x %q %#v %+v", p, p, p, p, p, p),
		fmt.Sprintf("%+v %#v", holder{p}, holder{p}),
	} {
		if strings.Contains(s, secret) || strings.Contains(s, p.Hex()) {
			t.Fatalf("private key printed: %s", s)
		}
		if !strings.Contains(s, "REDACTED") {
			t.Fatalf("no redaction marker in %q", s)
		}
	}
	if b, err := json.Marshal(holder{p}); err == nil {
		t.Fatalf("private key marshalled to JSON: %s", b)
	}
}

func TestPublicJSON(t *testing.T) {
	p, _ := NewPrivate()
	b, err := json.Marshal(p.Public())
	if err != nil {
		t.Fatal(err)
	}
	var got Public
	if err := json.Unmarshal(b, &got); err != nil || !got.Equal(p.Public()) {
		t.Fatalf("json round trip: %v %v", got, err)
	}
	if err := json.Unmarshal([]byte(`"short"`), &got); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestClamped(t *testing.T) {
	for range 100 {
		p, _ := NewPrivate()
		if p.k[0]&7 != 0 || p.k[31]&128 != 0 || p.k[31]&64 == 0 {
			t.Fatalf("key not clamped: %x", p.k)
		}
	}
}

func FuzzParsePublic(f *testing.F) {
	f.Add("HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=")
	f.Add(strings.Repeat("/", 44))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublic(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("accepted %q but prints %q", s, p.String())
		}
	})
}
