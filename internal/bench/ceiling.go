package bench

import (
	"encoding/json"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/redis/go-redis/v9"
)

// fixedAnswer is the bare ceiling's body: 188 bytes, about the size of /verify's.
var fixedAnswer = []byte(`{"kind":"key-auth","consumerId":"0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10","username":"bench-user","userId":"0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10","scopes":["read","write"],"groups":["staff"]}`)

// BareCeiling is the fastest a Go httprouter server answers on this machine:
// a fixed ~200-byte JSON body for GET /verify, nothing else.
func BareCeiling() http.Handler {
	r := httprouter.New()
	r.GET("/verify", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(fixedAnswer)
	})
	return r
}

// CeilingKey is the hash HGETALLCeiling reads; SeedCeiling writes it.
const CeilingKey = "bench:ceiling:user"

// CeilingRecord is the hash's fields: a user record's size.
var CeilingRecord = map[string]string{
	"id": "0b6f3c52-6a3e-4c8e-9d7e-2f1a9c4b7e10", "username": "bench-user", "firstname": "Bench", "lastname": "User",
	"email": "bench-user@example.com", "isActive": "true", "createdAt": "2026-12-06T04:19:32Z", "updatedAt": "2026-12-06T04:19:32Z",
}

// HGETALLCeiling is the fastest a server that reads Redis once per request
// answers: GET /verify does one go-redis HGETALL of CeilingKey, then writes it
// as JSON.
func HGETALLCeiling(rdb *redis.Client) http.Handler {
	r := httprouter.New()
	r.GET("/verify", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
		m, err := rdb.HGetAll(req.Context(), CeilingKey).Result()
		if err != nil || len(m) == 0 {
			http.Error(w, "redis", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m)
	})
	return r
}
