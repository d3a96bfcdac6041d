package email

import "crypto/x509"

// SetRootCAs makes p trust the certificates in pool (a test SMTP server's)
// instead of the system's. Call it before Configure.
func SetRootCAs(p *Provider, pool *x509.CertPool) { p.rootCAs = pool }

// HumanDuration is humanDuration, for tests.
var HumanDuration = humanDuration
