package adminapi

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGLCustomConfiguration: the SDK's initiate_plugin_configuration stores a
// configuration as an integration of a connector that takes one; its details
// give the configuration back as auth_string, which the CLI parses as JSON.
func TestGLCustomConfiguration(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	c, k, err := e.svc.CreateClient(ctx, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	cu, err := e.svc.RegisterClientUser(ctx, c, "ada")
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string, headers ...string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, "/gl"+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("X-API-Key", k.Key)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		e.public.ServeHTTP(w, req)
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, path, w.Code, w.Body.String())
		}
		return w.Code, m
	}
	status, m := call("POST", "/auth/tokens", `{"identifier":"ada","secret":"`+cu.Secret+`"}`)
	if status != 200 {
		t.Fatalf("token: %d %v", status, m)
	}
	bearer := []string{"Authorization", "Bearer " + m["data"].(map[string]any)["token"].(string)}
	status, m = call("POST", "/connectors/vault/integrations", `{"auth_type":"custom","configuration":{"username":"svc","apiKey":"k-42"}}`, bearer...)
	if status != 200 || m["data"] == nil || m["meta"] != nil {
		t.Fatalf("custom configuration: %d %v", status, m)
	}
	status, m = call("GET", "/connectors/vault/integrations/svc", "", bearer...)
	d, _ := m["data"].(map[string]any)
	var cfg map[string]any
	if status != 200 || json.Unmarshal([]byte(d["auth_string"].(string)), &cfg) != nil || cfg["apiKey"] != "k-42" || d["selected"] != true {
		t.Fatalf("details: %d %v", status, m)
	}
	status, m = call("POST", "/connectors/vault/integrations", `{"auth_type":"custom"}`, bearer...)
	if status != 400 || m["message"] == nil {
		t.Errorf("no configuration: %d %v", status, m)
	}
	status, m = call("DELETE", "/connectors/vault/integrations/svc", "", bearer...)
	if status != 200 || m["data"].(map[string]any)["success"] != true {
		t.Errorf("remove: %d %v", status, m)
	}
	if strings.Contains(e.logs.String(), "k-42") {
		t.Error("the configuration reached the log")
	}
}
