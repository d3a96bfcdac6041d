package main

import (
	"os"
	"strings"
	"testing"
)

// TestDocShowsThisPlugin keeps docs/plugins.md's worked example honest: the
// code it shows is this package's, character for character, so the example
// a reader copies is the one the tests build, load and sign in through.
func TestDocShowsThisPlugin(t *testing.T) {
	doc, err := os.ReadFile("../../docs/plugins.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"main.go", "main_test.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(doc), "```go\n"+string(src)+"```\n") {
			t.Errorf("docs/plugins.md does not show examples/gatehouse-plugin-fixed/%s as it is: copy the file into its code block", file)
		}
	}
}
