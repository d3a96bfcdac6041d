// Package pluginv1 is the generated Go code of the Gatehouse plugin protocol,
// version 1 (plugin.proto beside it; `make proto` regenerates it). Plugin
// authors use plugins/sdk rather than this package.
package pluginv1
