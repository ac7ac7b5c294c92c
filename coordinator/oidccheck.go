package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// What the coordinator checks of an external IdP, at start (fatal) and
// in `moat-coordinator doctor`:
//
//   - discovery: ISSUER/.well-known/openid-configuration answers with a
//     JSON document naming an authorization and a token endpoint;
//   - the issuer in that document is exactly --oidc-issuer (go-oidc and
//     every ID token are held to it; a trailing slash is a difference);
//   - the client ID and secret, as far as the IdP tells without a person
//     signing in (checkClient). The redirect URI, the scopes the client
//     may ask for, group claims and MFA cannot be checked that way.

// IdPCheck is what CheckIdP found out about an identity provider.
type IdPCheck struct {
	// Issuer is the issuer the provider names in its discovery document.
	Issuer string
	// Date is the provider's clock (its Date header) when it answered
	// discovery; zero when it sent none.
	Date time.Time
	// Credentials says what the token endpoint made of the client ID and
	// secret: "accepted", or why they could not be judged.
	Credentials string
	// UnlistedScopes are requested scopes the provider does not list in
	// scopes_supported (many IdPs list only some; a warning, not an error).
	UnlistedScopes []string
}

// discovery is the part of an OpenID provider's metadata the checks read.
type discovery struct {
	Issuer        string `json:"issuer"`
	AuthEndpoint  string `json:"authorization_endpoint"`
	TokenEndpoint string `json:"token_endpoint"`
	// RevocationEndpoint is optional (RFC 7009).
	RevocationEndpoint string   `json:"revocation_endpoint"`
	Scopes             []string `json:"scopes_supported"`
	TokenAuthMethod    []string `json:"token_endpoint_auth_methods_supported"`
}

// CheckIdP checks the IdP of cfg (an external issuer) as the coordinator
// does at start: discovery, the issuer, and the client credentials.
// redirect is the coordinator's callback URL. Errors say what is wrong
// and what to change, in the terms of serve's flags.
func CheckIdP(ctx context.Context, client *http.Client, cfg OIDCConfig, redirect string) (*IdPCheck, error) {
	d, date, err := discover(ctx, client, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	res := &IdPCheck{Issuer: d.Issuer, Date: date}
	for _, sc := range cfg.scopes() {
		if len(d.Scopes) > 0 && !slices.Contains(d.Scopes, sc) {
			res.UnlistedScopes = append(res.UnlistedScopes, sc)
		}
	}
	res.Credentials, err = checkClient(ctx, client, d, cfg, redirect)
	return res, err
}

// discover fetches and checks issuer's discovery document.
func discover(ctx context.Context, client *http.Client, issuer string) (*discovery, time.Time, error) {
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("--oidc-issuer %q is not a URL: %v", issuer, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("cannot reach the identity provider at %s: %v", where, unwrapURLError(err))
	}
	defer resp.Body.Close()
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	if resp.StatusCode != http.StatusOK {
		return nil, date, fmt.Errorf("the identity provider answered %s to %s: is --oidc-issuer %q the issuer URL (the part before /.well-known)?", resp.Status, where, issuer)
	}
	var d discovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, date, fmt.Errorf("%s is not an OpenID discovery document: %v", where, err)
	}
	if err := issuerMatches(issuer, d.Issuer); err != nil {
		return nil, date, err
	}
	if d.AuthEndpoint == "" || d.TokenEndpoint == "" {
		return nil, date, fmt.Errorf("the discovery document at %s names no authorization or token endpoint", where)
	}
	return &d, date, nil
}

// issuerMatches compares the configured issuer with the one the provider
// names: they must be the same string.
func issuerMatches(configured, named string) error {
	switch {
	case configured == named:
		return nil
	case named == "":
		return fmt.Errorf("the identity provider's discovery document names no issuer")
	case configured == named+"/":
		return fmt.Errorf("the issuer is %s but the provider calls itself %s — drop the trailing slash from --oidc-issuer", configured, named)
	case configured+"/" == named:
		return fmt.Errorf("the issuer is %s but the provider calls itself %s — add the trailing slash to --oidc-issuer", configured, named)
	}
	return fmt.Errorf("the issuer is %s but the provider calls itself %s — set --oidc-issuer to exactly %s", configured, named, named)
}

// checkClient asks the IdP whether it accepts the client ID and secret,
// without a person: first at the revocation endpoint (RFC 7009), which
// authenticates the client and answers 200 for an unknown token; then
// at the token endpoint with a made-up authorization code, which IdPs
// that authenticate the client before reading the code (Keycloak, Entra
// ID, Okta, Dex) refuse with invalid_client or invalid_grant.
func checkClient(ctx context.Context, client *http.Client, d *discovery, cfg OIDCConfig, redirect string) (string, error) {
	basic := len(d.TokenAuthMethod) == 0 || slices.Contains(d.TokenAuthMethod, "client_secret_basic")
	if d.RevocationEndpoint != "" {
		form := url.Values{"token": {"moat-startup-check-" + randomString()}, "token_type_hint": {"access_token"}}
		status, code, err := postClient(ctx, client, d.RevocationEndpoint, form, cfg, basic)
		if err != nil {
			return "", err
		}
		if refused := clientRefused(cfg, status, code); refused != nil || status == http.StatusOK {
			return "accepted at the revocation endpoint", refused
		}
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"moat-startup-check-" + randomString()},
		"redirect_uri": {redirect}, "code_verifier": {randomString() + randomString()}}
	status, code, err := postClient(ctx, client, d.TokenEndpoint, form, cfg, basic)
	if err != nil {
		return "", err
	}
	if refused := clientRefused(cfg, status, code); refused != nil {
		return "", refused
	}
	if code == "invalid_grant" {
		return "accepted at the token endpoint", nil
	}
	return fmt.Sprintf("not judged (the token endpoint answered %d %s)", status, code), nil
}

// clientRefused is the error for an answer that refuses the client.
func clientRefused(cfg OIDCConfig, status int, code string) error {
	switch {
	case code == "invalid_client" || status == http.StatusUnauthorized:
		return fmt.Errorf("the identity provider refused client %q with the configured secret (%s): check --oidc-client-id and --oidc-client-secret against the application registered there",
			cfg.ClientID, orDefault(code, http.StatusText(status)))
	case code == "unauthorized_client":
		return fmt.Errorf("the identity provider does not let client %q use the authorization code flow: allow it for the application registered there", cfg.ClientID)
	}
	return nil
}

// postClient posts form to endpoint with the client's credentials (HTTP
// Basic, or in the form when the IdP takes only client_secret_post) and
// returns the status and OAuth error code of the answer.
func postClient(ctx context.Context, client *http.Client, endpoint string, form url.Values, cfg OIDCConfig, basic bool) (int, string, error) {
	if !basic {
		form.Set("client_id", cfg.ClientID)
		form.Set("client_secret", cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", fmt.Errorf("the endpoint %q is not a URL: %v", endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret)) // RFC 6749 §2.3.1
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("cannot reach the identity provider at %s: %v", endpoint, unwrapURLError(err))
	}
	defer resp.Body.Close()
	return resp.StatusCode, tokenErrorCode(resp), nil
}

// tokenErrorCode is the OAuth error code of a token endpoint's answer.
func tokenErrorCode(resp *http.Response) string {
	var e struct {
		Error string `json:"error"`
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	}
	return e.Error
}

// unwrapURLError drops the method and URL net/http wraps around a
// transport error: the message already says where.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
