// Package dialect is the home of the seed APIs that Gatehouse serves beside
// its native one, one folder each (adminapi/dialect/NAME): publica.la, Gaio,
// Qloud and GL Connectors. A dialect only translates. Its Mount function
// registers its routes on a *web.Listener behind web.Dialect(scope, headers...)
// (a key of the dialect's admin scope opens those routes and nothing else),
// picks the body shape of its errors (a web.Shape), and calls core with its
// own core.UserPolicy. It imports the standard library, core and adminapi/web
// only: never the store, the plugin host or another dialect (the architecture
// test checks it). docs/architecture.md says more.
package dialect
