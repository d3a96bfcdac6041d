// Package configs holds Gatehouse's data files: the default model schemas embedded in
// the binary.
package configs

import "embed"

// Models holds the default model schemas (models/users.json,
// models/applications.json, models/credentials.json).
//
//go:embed models/*.json
var Models embed.FS
