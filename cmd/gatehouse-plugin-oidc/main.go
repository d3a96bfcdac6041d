// Command gatehouse-plugin-oidc is the generic OpenID Connect plugin
// (plugins/oidc) as its own binary, which the host loads by path and SHA-256.
package main

import (
	"github.com/gatehouse/gatehouse/plugins/oidc"
	"github.com/gatehouse/gatehouse/plugins/sdk"
)

func main() { sdk.Serve(oidc.New()) }
