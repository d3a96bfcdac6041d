package google

// DefaultIssuer is the issuer a configuration without one uses.
var DefaultIssuer = defaults.Issuer
