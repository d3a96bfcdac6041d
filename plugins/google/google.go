// Package google is the Google plugin: sign-in with a Google account and
// linked Google accounts, on the OpenID Connect library (plugins/oidc) with
// Google's defaults. Only what differs from a generic issuer lives here.
//
// # Configuration
//
// The keys are plugins/oidc's, with these defaults:
//
//	clientId                   required: the OAuth client ID from the Google Cloud console
//	clientSecretEnv            required: the host's environment variable holding its secret
//	issuer                     https://accounts.google.com (tests point it at a fake)
//	scopes                     ["openid","email","profile"]
//	integrationScopes          scopes; add Google API scopes a product needs, such as
//	                           "https://www.googleapis.com/auth/calendar.readonly"
//	usernameClaim              "" (Google accounts have no login: the host derives one)
//	displayName                "Google"
//	authParams                 none; {"hd": "example.com"} preselects a Workspace domain
//	                           (a hint only: it restricts nothing)
//	insecureSkipEmailVerified  false
//
// Linking an account asks for access_type=offline and prompt=consent, without
// which Google returns no refresh token.
//
// # Registering Gatehouse with Google
//
// In the Google Cloud console (APIs & Services → Credentials), create an
// OAuth client ID of type "Web application" and add the authorized redirect
// URI https://PUBLIC/auth/providers/NAME/callback, where PUBLIC is the public
// address of Gatehouse and NAME the plugin's name in its configuration
// (usually google). On the OAuth consent screen, add the scopes openid, email
// and profile, plus any API scopes of integrationScopes. Put the client secret
// in an environment variable of the host and name it in clientSecretEnv.
package google

import (
	"github.com/gatehouse/gatehouse/plugins/oidc"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

// Issuer is Google's OpenID Connect issuer.
const Issuer = "https://accounts.google.com"

// defaults are Google's: its issuer, no username claim, and the parameters
// that make Google return a refresh token (it has no offline_access scope).
var defaults = oidc.Defaults{
	Name:          "google",
	DisplayName:   "Google",
	Issuer:        Issuer,
	OfflineParams: map[string]string{"access_type": "offline", "prompt": "consent"},
}

// New returns the Google plugin, both kinds.
func New() sdk.Plugins { return oidc.NewWith(defaults) }
