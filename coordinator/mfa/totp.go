// Package mfa is the second factor shared by the embedded identity
// provider and the coordinator's own MFA: TOTP enrollment and verification
// (RFC 6238: SHA-1, 6 digits, 30-second steps, as every authenticator app
// expects) with replay protection, and a lockout rule for repeated
// failures.
//
// The package keeps no state. Callers store, per person, the TOTP secret
// (sealed), the last accepted step, the count of consecutive failures and
// the time a lockout ends, and pass them in.
package mfa

import (
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"github.com/skip2/go-qrcode"
)

// Period is the TOTP time step.
const Period = 30 * time.Second

// Digits is the length of a TOTP code.
const Digits = 6

// Errors Verify returns. Tell the person "that code is not valid" for both;
// ErrReplayed is separate so that callers can log it distinctly.
var (
	ErrBadCode  = errors.New("the code is not valid")
	ErrReplayed = errors.New("the code was already used; wait for the next one")
)

// Enrollment is a new TOTP secret and the ways to show it to the person.
// Show it once, and store only the sealed Secret.
type Enrollment struct {
	// Secret is the base32 secret (no padding), for typing into an app.
	Secret string
	// URL is the otpauth://totp/… key URI the QR code encodes.
	URL string
	// QR is the QR code as a PNG data: URI ("data:image/png;base64,…"),
	// for an <img src>. With html/template, wrap it in template.URL.
	QR string
}

// NewSecret makes a new random 160-bit TOTP secret for account (usually an
// email address) at issuer (the name shown in the authenticator app).
func NewSecret(issuer, account string) (Enrollment, error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(Period / time.Second),
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("new totp secret: %w", err)
	}
	return enrollment(key)
}

// EnrollmentFor rebuilds the Enrollment of an existing secret, for showing
// it again (for example on a setup form that failed validation before the
// person confirmed the secret).
func EnrollmentFor(issuer, account, secret string) (Enrollment, error) {
	if _, err := hotp.GenerateCode(secret, 0); err != nil {
		return Enrollment{}, fmt.Errorf("totp enrollment: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(Period / time.Second),
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		Secret:      decodeSecret(secret),
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp enrollment: %w", err)
	}
	return enrollment(key)
}

func enrollment(key *otp.Key) (Enrollment, error) {
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, 256)
	if err != nil {
		return Enrollment{}, fmt.Errorf("totp enrollment: qr code: %w", err)
	}
	return Enrollment{
		Secret: key.Secret(),
		URL:    key.URL(),
		QR:     "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
	}, nil
}

// decodeSecret decodes a base32 secret the way hotp does (any case, with
// or without padding); the caller has checked that it decodes.
func decodeSecret(secret string) []byte {
	secret = strings.ToUpper(strings.TrimSpace(secret))
	if n := len(secret) % 8; n != 0 {
		secret += strings.Repeat("=", 8-n)
	}
	b, _ := base32.StdEncoding.DecodeString(secret)
	return b
}

// Step is the TOTP time step t falls in.
func Step(t time.Time) int64 {
	return t.Unix() / int64(Period/time.Second)
}

// Code is the code for secret at time t (for tests and tools).
func Code(secret string, t time.Time) (string, error) {
	return hotp.GenerateCode(secret, uint64(Step(t)))
}

// Verify checks code against secret at time now. It accepts the codes of
// the current step and of one step either side (clock drift), and refuses
// any step at or before lastStep, so that a code works once. On success
// it returns the step to store as the new lastStep. Spaces in code are
// ignored. Comparison is in constant time and all candidate steps are
// always computed.
//
// A wrong code gives ErrBadCode, a code of an already used step
// ErrReplayed; an unusable secret gives another error.
func Verify(secret, code string, lastStep int64, now time.Time) (int64, error) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != Digits {
		return 0, ErrBadCode
	}
	cur := Step(now)
	matched, replayed := int64(-1), false
	for s := cur - 1; s <= cur+1; s++ {
		want, err := hotp.GenerateCode(secret, uint64(s))
		if err != nil {
			return 0, fmt.Errorf("verify totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if s > lastStep {
			matched = s
		} else {
			replayed = true
		}
	}
	switch {
	case matched >= 0:
		return matched, nil
	case replayed:
		return 0, ErrReplayed
	}
	return 0, ErrBadCode
}
