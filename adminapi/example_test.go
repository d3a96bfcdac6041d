package adminapi_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/adminapi"
	"github.com/gatehouse/gatehouse/configs"
	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/core/redisstore"
)

// A gateway written in Go checks each request in process, on the Redis that
// Gatehouse uses, instead of calling /verify over HTTP.
func ExampleVerifier_Middleware() {
	ctx := context.Background()
	mr, err := miniredis.Run() // a real deployment: Gatehouse's Redis URL and key prefix
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	client := redisstore.NewClient(&redis.UniversalOptions{Addrs: []string{mr.Addr()}})
	defer client.Close()
	models, err := core.LoadModels(configs.Models)
	if err != nil {
		log.Fatal(err)
	}
	svc := core.NewService(redisstore.New(client, redisstore.Options{Prefix: "gh:"}), core.Options{
		Models:  models,
		Limiter: redisstore.NewLimiter(client, "gh:"), // failed attempts count across processes
	})

	// A consumer and its key, as an operator makes them with the admin API.
	if _, err := svc.CreateUser(ctx, core.Fields{"username": "vic"}, core.UserPolicy{}); err != nil {
		log.Fatal(err)
	}
	key, err := svc.CreateCredential(ctx, core.CredentialRequest{ConsumerID: "vic", Type: "key-auth"})
	if err != nil {
		log.Fatal(err)
	}

	// The application sees who the consumer is, never the client's own claim.
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Consumer-Username"))
	})
	gateway := adminapi.NewVerifier(svc, adminapi.VerifierOptions{}).Middleware(app)

	for _, apiKey := range []string{key.ID + ":" + key.KeySecret, key.ID + ":wrong"} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("x-api-key", apiKey)
		r.Header.Set("X-Consumer-Username", "root") // replaced, or never seen
		w := httptest.NewRecorder()
		gateway.ServeHTTP(w, r)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body)
		} else {
			fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 200 hello vic
	// 401 Bearer realm="gatehouse"
}
