package redisstore_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core/redisstore"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		want    *redis.UniversalOptions // TLSConfig compared by ServerName only
		tlsHost string
		client  string // "plain", "failover" or "cluster"
		wantErr string // part of the error; "" for success
	}{
		{
			name: "single", url: "redis://localhost:6379",
			want: &redis.UniversalOptions{Addrs: []string{"localhost:6379"}}, client: "plain",
		},
		{
			name: "defaults", url: "redis://",
			want: &redis.UniversalOptions{Addrs: []string{"localhost:6379"}}, client: "plain",
		},
		{
			name: "password and db", url: "redis://:s3cret@cache.internal:6380/2?dial_timeout=3",
			want:   &redis.UniversalOptions{Addrs: []string{"cache.internal:6380"}, Password: "s3cret", DB: 2, DialTimeout: 3e9},
			client: "plain",
		},
		{
			name: "tls with user", url: "rediss://app:pw@redis.example.com:6390/1",
			want:    &redis.UniversalOptions{Addrs: []string{"redis.example.com:6390"}, Username: "app", Password: "pw", DB: 1},
			tlsHost: "redis.example.com", client: "plain",
		},
		{
			name: "sentinel with both passwords",
			url:  "redis://sentuser:sentpw@s1:26379?master_name=mymaster&addr=s2:26379&addr=s3:26379&password=redispw&db=3",
			want: &redis.UniversalOptions{
				Addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, MasterName: "mymaster",
				SentinelUsername: "sentuser", SentinelPassword: "sentpw", Password: "redispw", DB: 3,
			},
			client: "failover",
		},
		{
			name: "cluster with several addrs",
			url:  "redis+cluster://u:pw@n1:7000?addr=n2:7001&addr=n3:7002&max_redirects=5",
			want: &redis.UniversalOptions{
				Addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, IsClusterMode: true,
				Username: "u", Password: "pw", MaxRedirects: 5,
			},
			client: "cluster",
		},
		{
			name: "cluster with one addr", url: "redis+cluster://n1:7000",
			want: &redis.UniversalOptions{Addrs: []string{"n1:7000"}, IsClusterMode: true}, client: "cluster",
		},
		{
			name: "cluster over tls", url: "rediss+cluster://n1:7000?addr=n2:7000",
			want:    &redis.UniversalOptions{Addrs: []string{"n1:7000", "n2:7000"}, IsClusterMode: true},
			tlsHost: "n1", client: "cluster",
		},
		{name: "cluster with a db", url: "redis+cluster://n1:7000/3", wantErr: "database"},
		{name: "bad scheme", url: "http://:pw@localhost:6379", wantErr: `unsupported scheme "http"`},
		{name: "no scheme", url: "localhost:6379", wantErr: "scheme"},
		{name: "garbage", url: "::not a url::", wantErr: "invalid Redis URL"},
		{name: "bad db", url: "redis://:pw@localhost/abc", wantErr: "invalid database number"},
		{name: "unknown option", url: "redis://:hunter2@localhost?foo=1", wantErr: "unexpected option: foo"},
		{name: "bad sentinel addr", url: "redis://:pw@s1?master_name=m&addr=nope", wantErr: "addr"},
		{name: "password in a bad port", url: "redis://user:p@ss:w0rd@host:xx", wantErr: "invalid Redis URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := redisstore.ParseURL(tc.url)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseURL(%q) = %+v, want an error", tc.url, got)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("ParseURL(%q) error %q, want it to contain %q", tc.url, err, tc.wantErr)
				}
				for _, secret := range []string{"hunter2", ":pw@", "p@ss:w0rd", "w0rd"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("ParseURL error %q shows the password", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tc.url, err)
			}
			if (got.TLSConfig != nil) != (tc.tlsHost != "") || (got.TLSConfig != nil && got.TLSConfig.ServerName != tc.tlsHost) {
				t.Errorf("TLSConfig = %+v, want server name %q", got.TLSConfig, tc.tlsHost)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(redis.UniversalOptions{}, "TLSConfig")); d != "" {
				t.Errorf("ParseURL(%q) mismatch (-want +got):\n%s", tc.url, d)
			}
			c := redisstore.NewClient(got)
			defer c.Close()
			switch cl := c.(type) {
			case *redis.ClusterClient:
				if tc.client != "cluster" {
					t.Errorf("NewClient made a ClusterClient, want %s", tc.client)
				}
			case *redis.Client:
				if tc.client == "cluster" {
					t.Errorf("NewClient made a %T, want a ClusterClient", cl)
				}
			default:
				t.Errorf("NewClient made a %T", cl)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://localhost:6379", "redis://localhost:6379"},
		{"redis://:s3cret@host:6379/2", "redis://:xxxxx@host:6379/2"},
		{"rediss://app:pw@host:6379", "rediss://app:xxxxx@host:6379"},
		{"redis://user@host", "redis://user@host"},
		{
			"redis://su:spw@s1:26379?master_name=m&addr=s2:26379&password=rpw&sentinel_password=x",
			"redis://su:xxxxx@s1:26379?master_name=m&addr=s2:26379&password=xxxxx&sentinel_password=xxxxx",
		},
		{"redis+cluster://u:pw@n1:7000?addr=n2:7001", "redis+cluster://u:xxxxx@n1:7000?addr=n2:7001"},
		{"redis://user:p@ss:w0rd@host:xx?password=a&b=c", "redis://xxxxx@host:xx?password=xxxxx&b=c"},
	}
	for _, tc := range tests {
		if got := redisstore.RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
