// Package redisstore implements core.Store on a go-redis UniversalClient, so one
// Redis server, a Sentinel-managed one or a Redis Cluster is a URL away (ParseURL,
// NewClient). It passes storetest.Run on miniredis, a real redis-server and a real
// 3-master Redis Cluster.
//
// # Key layout
//
// P is the key prefix (Options.Prefix, default "gh:"). Everything a user owns lives
// in the user's hash slot, tag {<uid>}, so deleting a user is one MULTI in one slot,
// and a credential and its owners' state are read in one round trip:
//
//	P u:{uid}                        user record (JSON of userRecord, its identities
//	                                 included, with their raw claims as JSON; fields
//	                                 its key gives are left out, and the fields every
//	                                 record has are written in a short form: records.go)
//	P u:{uid}:app:<appid>            app record (JSON of appRecord)
//	P u:{uid}:apps                   zset appid by seq
//	P u:{uid}:appnames               hash app name → appid (names unique per owner)
//	P u:{uid}:cred:<type>:<id>       credential record (JSON of credRecord, in the short
//	                                 form as the user's); id is the keyId (key-auth, jwt)
//	                                 or the consumer's id (basic-auth, oauth2)
//	P u:{uid}:creds                  zset "<type>:<id>" by seq: every credential in the slot
//	P u:{uid}:cc:<appid>             zset "<type>:<id>" by seq: one app's credentials (a
//	                                 user's own are creds less its apps': ownCredsScript;
//	                                 a P u:{uid}:cc:<uid> of the layout before December
//	                                 2026 is read by nothing, and Doctor removes it)
//	P u:{uid}:pw                     the user's password, an argon2id PHC string
//	P u:{uid}:secret                 the user secret's hash, "sha256:<hex>"
//	P u:{uid}:sess:<hex>             a login session or OAuth token (JSON of
//	                                 sessionRecord), <hex> the SHA-256 of the token; a
//	                                 Redis expiry at its ExpiresAt is housekeeping only
//	P u:{uid}:sessions               zset <hex> by CreatedAt (µs): the login sessions
//	P u:{uid}:tokens                 zset <hex> by CreatedAt (µs): the OAuth tokens of
//	                                 the user's credentials and of its apps'
//	P u:{uid}:linked                 hash "<connector>:<userIdentifier>" → JSON of
//	                                 linkedRecord: the user's integration accounts, their
//	                                 tokens sealed by the caller; connectors never hold ':'.
//	                                 ":selected:<connector>" → the userIdentifier of the
//	                                 connector's selected account (a leading ':' never
//	                                 starts an account's field)
//
// A client (tenant) keeps its records in its own slot, tag {<cid>}:
//
//	P c:{cid}                        client record (JSON of clientRecord)
//	P c:{cid}:keys                   hash keyId → JSON of clientKeyRecord: its API keys
//
// Global keys, each in its own slot:
//
//	P seq:users, P seq:apps, P seq:creds, P seq:clients
//	                                 INCR counters; a number burnt by a failed
//	                                 create is skipped, never reused
//	P {idx:users}:<b>                zset uid by Number, for the Numbers n with
//	                                 n >> 7 = b (128 numbers a bucket)
//	P {idx:apps}:<b>                 zset "<uid>/<appid>" by seq, the same way
//	P {idx:creds}:<b>                zset "<uid>/<t>/<id>" by seq, the same way; <t>
//	                                 the type's letter: k key-auth, b basic-auth,
//	                                 o oauth2, j jwt
//	P {idx:<list>}:count             the number of members of the list's buckets
//	P {idx:<list>}:upgrading         the lock of the list's upgrade (listindex.go)
//	                                 The buckets and counter of a list share one
//	                                 slot; the P idx:users, P idx:apps and
//	                                 P idx:creds zsets of the layout before them are
//	                                 moved into them ("List indexes" below).
//	P idx:clients                    zset cid by Seq
//	P idx:expiring                   zset uid by ExpiresAt (Unix µs): the users that
//	                                 expire (ExpiredUsers)
//	P cb:<kind>:{<n>}                claim bucket: hash, field a normalised name of that
//	                                 kind, value the claim "<owner>.<ms>" (owner and
//	                                 claim time in Unix milliseconds, base 36; a value
//	                                 "<owner>|<micros>" of the form before December
//	                                 2026, the time in decimal Unix microseconds,
//	                                 still reads: claimValue); <n> (0–65535) is
//	                                 the low 16 bits of the name's 64-bit FNV-1a hash,
//	                                 fixed for the life of the data (claimBucket). Each
//	                                 bucket is a slot of its own. The kinds and names:
//	                                 username <UsernameKey>, email <EmailKey>,
//	                                 externalId <value>,
//	                                 clientIdentifier <cid>/<identifier> (a client's
//	                                 identifier for its user, case-sensitive, as given;
//	                                 client ids never hold '/'),
//	                                 clientName <lower-cased name> (owner the client),
//	                                 groupName <lower-cased name> (owner the group),
//	                                 identity <provider>:<subject> (an identity at a
//	                                 provider other than "email", which are unique
//	                                 through the email claim; providers never hold ':'),
//	                                 key-auth, jwt <keyId> (owner the user whose slot
//	                                 holds the credential),
//	                                 app <appid> (the app locator: claimed before the
//	                                 app is written, released after it is deleted),
//	                                 clientKey <hex> (a client key's lookup, owner
//	                                 "<cid>/<keyId>", <hex> the SHA-256 of the key:
//	                                 claimed before the key is written, released after
//	                                 it; readers check the client and key records, so a
//	                                 deleted client's or revoked key's lookup left by a
//	                                 failed clean-up resolves to nothing)
//	P layout:claims                  "buckets" once no claim key of the layout before
//	                                 claim buckets is left (below)
//	P claim:<kind>:<name>, P app:<appid>, P clientkey:<hex>
//	                                 the claims of the layout before claim buckets, a
//	                                 key each with the value its bucket field now has:
//	                                 only ever read and deleted (claims.go, oldClaims)
//	P appname:<name>                 set of "<uid>/<appid>" (AppsByName; exact names)
//	P appredirect:<hex>              set of "<uid>/<appid>" (AppsByRedirectURI), <hex>
//	                                 the SHA-256 of the exact RedirectURI (a URI may be
//	                                 long); an empty RedirectURI is never indexed
//	P scopes                         hash scope name → JSON {reg, createdAt}
//	P groups                         hash group id → JSON of groupRecord: the group
//	                                 registry (read by /verify's pipeline)
//	P seq:groups, P idx:groups       group counter, zset gid by Number
//	P {ix}:un:<b>                    zset, all scores 0, of UsernameKeys: a name bucket
//	                                 of the username index (at most 128 names, from
//	                                 its low up to the next bucket's), read by
//	                                 username prefix (nameindex.go)
//	P {ix}:undir                     zset, all scores 0, "<low>\x00<b>" for every name
//	                                 bucket: a name's bucket is the one of the
//	                                 greatest low at most the name; the first's low
//	                                 is ""
//	P {ix}:unseq                     INCR counter numbering the name buckets
//	P {ix}:unames:upgrading          the lock of the move of P {ix}:unames
//	P {ix}:unames                    the username index of the layout before the name
//	                                 buckets (zset, scores 0, "<UsernameKey>\x00<uid>"),
//	                                 moved into them ("Username index" below)
//	P {ix}:inactive                  zset uid by Number: users whose own flag is off
//	P {ix}:gm:<gid>                  zset uid by Number: a group's members
//	P {ix}:tag:<tag>                 zset uid by Number: users holding a tag
//	                                 effectively (own or a group's)
//	                                 The {ix} keys share one slot; they follow the
//	                                 user records (userindex.go) and Doctor rebuilds them.
//	P {adminkeys}:byid               hash id → JSON of adminKeyRecord  (the four admin
//	P {adminkeys}:byhash             hash hash → id                     key hashes share
//	P {adminkeys}:names              hash name → id                     one slot)
//	P {adminkeys}:used               hash id → last use, Unix microseconds
//	P rl:<key>                       rate limiter state (Limiter: GCRA's theoretical arrival time)
//	P kv:<namespace>:<key>           a plugin's key-value entry (PluginKV), with its
//	                                 Redis expiry as TTL; namespaces never contain ':'
//
// Each shape (and each member shape: "<type>:<id>", "<uid>/<appid>",
// "<uid>/<type>/<id>", "<cid>/<keyId>", the linked-account fields, and claim
// values "<owner>.<ms>") is spelled once, in
// layout.go, which both builds keys and parses them back: Doctor reads the keys
// it scans with that parser, and a test checks that every shape round-trips.
//
// Records are JSON of this package's own structs, never of core's types, so a
// domain change never silently changes the stored format.
//
// # Writes
//
// A create (1) claims each unique name with a plain HSETNX of its bucket's
// field (its value the owner and the claim time), the store's estimate of Redis' clock (Options.Clock when
// set): the local clock plus the offset the last Redis TIME reply showed, read
// in every create, so only a process's first create reads TIME first. In the
// same pipeline it reads TIME and numbers the entity with INCR of its counter;
// t0 is the earlier of the claim time and that TIME, so an estimate that runs
// late can only make the create miss its deadline, never make its claims look
// older than they are to a create that finds them. A claim that exists is
// taken while its owner still holds the name or while it is younger than
// Options.ClaimStaleAfter (a create may be in flight), and is otherwise taken
// over with a compare-and-set script on the bucket's field, one such claim at
// a time; (2) writes the
// entity's own keys in one MULTI (or SET NX) in its slot, watching only keys of
// that slot; (3) in one pipeline, adds its entries to global keys (the list
// index, an app's name and redirect-URI sets, the P idx:expiring entry of a
// user that expires) and checks that its claims still hold its value and that
// less than Options.WriteDeadline has passed since t0, else answers Conflict.
// A create whose names are free so makes three sequential round trips. A user,
// written by one SET NX, makes two on one server (not a Cluster): the first
// pipeline also WATCHes and checks the absence of the user's key, and (2) and
// (3) are one MULTI, run whole, in order, and only if nobody wrote the key
// since (create.go, createAtOnce). Such a create holds one pooled connection
// between its two round trips, so at most three quarters of the pool's
// connections are held that way at once; a create beyond that takes three
// round trips. On a failure
// after (2) it undoes its slot write if that is still as written and then
// removes its entries; on any failure after a claim it releases its claims
// with a compare-and-delete script on each bucket's field (a number taken is
// burnt, never reused).
// Because a create finishes (or rolls back) well within the staleness window,
// a claim can only be taken over from a create that has given up. Its claims
// being taken at once, two creates racing for two names each can both lose
// (each holding one), where one at a time one would have won: both answer
// Conflict, and a retry finds the names free. One function runs this
// protocol for every kind of entity (create.go): an entity gives its claims,
// its counter, its slot write, its entries and its undo.
//
// An update runs WATCH/GET/fn/MULTI on the entity's own key, retrying on
// redis.TxFailedErr, then Conflict. A changed email or externalId, or an identity
// linked or unlinked, is claimed first and the old claim released afterwards by
// compare-and-delete against the value read while the user still held it; a
// changed ExpiresAt is written to P idx:expiring after the MULTI, and an app's
// changed name or RedirectURI moves its set entries after the MULTI. A linked
// account is written with WATCH of its user's record and MULTI in the user's
// slot, so it is never left behind by a DeleteUser racing it; the account
// and its connector's selection field change in that same MULTI (a delete of
// the selected account selects the newest remaining one). A client is created
// by the create protocol (its name the claim, P seq:clients its counter); a
// client key too, its hash lookup the claim, without a counter, its write a
// WATCH of the client record and MULTI in the client's slot. A delete removes
// the entity and everything it owns in one MULTI in the user's slot, then its
// index entries, locators and claims.
//
// With Options.WaitReplicas set, every write method ends, once its steps
// succeeded, with a fence (PUBLISH P fence) and WAIT in one pipeline, and
// answers Unavailable unless enough replicas acknowledged: replication being
// one ordered stream, the fence's acknowledgement covers every step before it
// (replicated.go). A user's create in two round trips sends them after its
// MULTI, in its second: two round trips where it took four.
//
// P idx:expiring, a global key like the list indexes, can fall out of step with
// the records it follows (a crash, or two updates racing between their MULTI and
// their entry). ExpiredUsers reads the records of the page it returns, drops
// entries whose user is gone or no longer expires and corrects scores, so such
// leftovers never hold up expiry; Doctor repairs the rest. Both fix an entry with
// a script that compares its score first, having read the entry before the
// record, so an update's own entry is never overwritten with an older value.
//
// # List indexes
//
// The lists of users, apps and credentials are indexed in buckets of 128
// numbers (listindex.go): a zset of at most 128 members of at most 64 bytes is
// a listpack in Redis' default configuration, about 40–75 bytes a member where
// one large zset is a skiplist of 130–170. An entity's entry goes to the bucket
// of its number, which every writer knows (a create its new number; a delete
// the score of the entity in its owner's zsets, or its record's Seq). A
// member is added or removed with a script that moves the list's counter only
// when the member was added or removed, so the counter, which pages report
// as their Total, is exact whatever the retries, races and rollbacks. A page
// reads, in one pipeline, the counter, P seq:<list> (the last bucket) and
// ceil((count+1)/128)+1 buckets from the cursor's (as many wherever the page
// starts, so a page costs the same commands at any size), which cover it when
// they are full, each with a LIMIT of what it would then give plus an eighth
// of the page (at least 1): a page of a dense store reads about what it
// returns, one with a few holes is still one round trip. A page
// still short goes on where it stopped, with 4, 8, then 16 buckets a round
// trip (four round trips in all at most), after which it ends short with the
// first number it did not read as its cursor. An offset (Gaio's numbered
// pages) is counted with ZCOUNT, 64 buckets a round trip.
//
// A store of the layout before the buckets (one zset P idx:<list>) is moved
// on the store's first use (gatehouse serve does it before serving, doctor
// before checking): under a lock in the buckets' slot that expires 10 s after
// its holder's last batch, one instance copies the old zset in batches with a
// script that writes only while the lock is still its own, then deletes it;
// another instance waits for the lock. Every call that reads or writes a
// bucket waits until no old zset is left, so no entry removed from a bucket can
// be brought back by a copy; a crash midway leaves the old zset whole, and the
// next attempt copies again, adding only what is missing.
//
// # Username index
//
// The username-prefix filter reads the users' UsernameKeys in lex order from
// name buckets (nameindex.go): zsets of at most 128 names (a listpack, about
// 15 bytes a user where one skiplist of "<UsernameKey>\x00<uid>" cost 150),
// each holding the names from its low up to the next bucket's, found through
// the directory P {ix}:undir. One script in the {ix} slot adds a name (splitting
// a full bucket in two), removes one (dropping an emptied bucket), reads a
// range across buckets and counts one (a ZCARD for each bucket a prefix spans).
// A name's user is its username claim's owner, read in one pipeline for a
// batch; the record read next is checked as for every index. Since a name's
// entry does not say whose it is, it is removed before its claim is released
// (on a Cluster in a round trip of its own, create.go's dropEntries), so no
// other user's create of the name can add its entry before that removal.
// A store of the layout before holds P {ix}:unames: the first use moves it
// into buckets with the list indexes, under its own lock, the same way.
//
// # Time limits
//
// No call waits on Redis for long. A read (a lookup, a list, ReadAuth, the
// Limiter, Ping) is bounded as a whole by Options.ReadTimeout (500 ms by
// default); each step of a write (the claim of one name, the MULTI in the slot,
// the index entries, the final check, a script, one page of Doctor) by
// Options.WriteTimeout (2 s), and so is the clean-up after a failed write, which
// is not cancelled with the request. The bounds are context deadlines under the
// caller's context; a client from NewClient applies them to the socket
// (ContextTimeoutEnabled), so the caller is freed when one passes and go-redis
// drops the connection that waited. The call answers Unavailable, "redis did not
// answer within 500ms". Nothing else needs restarting when Redis answers again:
// the next calls dial fresh connections. A write cut short leaves what a crash
// there would (see above), which readers skip and Doctor repairs.
//
// Plugin key-value entries are single keys: Get, Set and Delete are GET, SET (PX)
// and DEL, CompareAndSet one script on the key.
//
// # Sessions and verification
//
// A session or token record lives in its user's slot, so one script writes it
// (refusing when the user record is gone), prunes the zset's expired or vanished
// members and evicts the oldest sessions beyond the user's limit; a password
// change ends the sessions in the same script; DeleteUser and DeleteSessions
// remove records and zsets in one write. Redis expiries never decide anything:
// miniredis's clock moves only when told, and an injected clock may differ from
// Redis', so readers compare ExpiresAt with the store's clock (and ReadAuth's
// caller with its own).
//
// ReadAuth makes one round trip: a pipeline of one MGET over the user's slot
// (the user record and the credential, session, password, secret and app the
// query names, and the app its caller expects the credential to belong to),
// HGETALL P scopes and, for each Throttle, GET P rl:<key>, and TIME (the
// limiter's state, read as Limiter.Allow with n = 0 reads it). An app's
// credential whose app was not read costs one more MGET in the same slot. For
// an OAuth access token the MGET is a script instead, which also reads the
// token's oauth2 credential and app (their keys follow from the token's
// consumerId). On a Cluster the commands go to their nodes concurrently; no
// command spans two slots.
// Locating the slot beforehand is one HGET of a claim or locator's bucket
// field (LocateCredential, LocateApp, LocateUser), which callers may cache: a
// stale slot reads as a missing credential, and they locate again.
//
// # Claims written before claim buckets
//
// A store written by a version before claim buckets holds its claims as keys
// of their own (P claim:<kind>:<name>, P app:<appid>, P clientkey:<hex>).
// No version writes them any more (every instance is upgraded at once), so
// they are only read and deleted: while they may exist, a lookup reads the
// bucket's field and the old key in one pipeline (one round trip; the
// bucket's value first), a take also reads the old key in its first pipeline
// and answers Conflict when it holds the name for an owner that still holds
// it (as a taken claim would), and a release deletes both where they hold
// the owner's value. gatehouse doctor --repair moves each old key into its
// bucket (HSETNX of the field with the key's value, then compare-and-delete
// of the key) and, once none is left, writes P layout:claims = "buckets"; so
// does the first process to find a store empty (no P seq:users, seq:clients
// or seq:groups). A process reads the marker in the pipeline of its first
// lookup or take, and again at most every minute until it has seen it; from
// then on it reads no old key, and a lookup is one HGET.
//
// Readers never trust an index alone: an index, locator or name-set entry whose
// record is missing (or no longer matches) is skipped, and Doctor removes it. No
// command uses KEYS; only Doctor scans.
//
// # Change feed
//
// Every write that can change what a verification answers (a user's, its apps',
// credentials', sessions' and tokens', its password and secret, the scope
// registry) ends by telling this process' followers at once and publishing
// "<origin> <uid>" ("<origin> *" for the scope registry) on the pub/sub channel
// P changes (not a key), which FollowChanges in every process subscribes to
// (changes.go). The same channel carries "<origin> !<ms> <limiter key>"
// (Throttled): a /verify failure throttle went over its rate on that process.
//
// Immutable fields (IDs, Number, Seq, owners, Username, CreatedAt) changed by an
// update's fn are silently restored. Props go through JSON: numbers come back as
// float64.
package redisstore
