package core

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Model files, read by LoadModels.
const (
	usersModelFile       = "users.json"
	appsModelFile        = "applications.json"
	credentialsModelFile = "credentials.json"
	noPropsModel         = ".no-custom-properties" // for a credential type credentials.json leaves out
)

// modelBase is the URL under which model files are known to the schema compiler;
// a "$ref" between model files resolves to another file of the same fs.FS.
const modelBase = "gatehouse-model:///"

// Model is one compiled model schema: JSON Schema 2020-12, validated with format
// assertion on. Defaults are applied by ApplyDefaults, not by the validator.
type Model struct {
	schema   *jsonschema.Schema
	props    map[string]map[string]any // the top-level "properties", as written
	required []string
	coded    []string // core fields that code checks and bounds (users' username, email, redirectUri)
}

// Models are the user, app and per-type credential models.
type Models struct {
	Users, Apps *Model
	Credentials map[CredentialType]*Model
}

// LoadModels reads users.json, applications.json and credentials.json from fsys:
// configs.Models (where they sit under models/, which LoadModels looks into when the
// root holds no users.json), or os.DirFS(models.path). The core fields are added to a
// model's properties when missing (users: username, email, redirectUri; apps: name,
// redirectUri) so that "additionalProperties": false never rejects them; code checks
// them. credentials.json holds one object schema per credential type under
// "properties"; a type it leaves out takes no custom properties. A missing or
// broken file is an error naming it.
func LoadModels(fsys fs.FS) (*Models, error) {
	const op = "core.LoadModels"
	if _, err := fs.Stat(fsys, usersModelFile); errors.Is(err, fs.ErrNotExist) {
		if _, err := fs.Stat(fsys, "models/"+usersModelFile); err == nil {
			fsys, _ = fs.Sub(fsys, "models")
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(fsLoader{fsys})

	docs := map[string]map[string]any{}
	for _, name := range []string{usersModelFile, appsModelFile, credentialsModelFile} {
		doc, err := readModelFile(fsys, name)
		if err != nil {
			return nil, &Error{Kind: Invalid, Op: op, Msg: "model " + name, Err: err}
		}
		docs[name] = doc
	}
	addCoreFields(docs[usersModelFile], "username", "email", "redirectUri")
	addCoreFields(docs[appsModelFile], "name", "redirectUri")
	docs[noPropsModel] = map[string]any{"type": "object", "additionalProperties": false}
	for name, doc := range docs {
		if err := c.AddResource(modelBase+name, doc); err != nil {
			return nil, &Error{Kind: Invalid, Op: op, Msg: "model " + name, Err: err}
		}
	}

	compile := func(name, ptr string, doc map[string]any) (*Model, error) {
		sch, err := c.Compile(modelBase + name + ptr)
		if err != nil {
			return nil, &Error{Kind: Invalid, Op: op, Msg: "model " + name + ptr, Err: err}
		}
		return newModel(sch, doc), nil
	}
	var m Models
	var err error
	if m.Users, err = compile(usersModelFile, "", docs[usersModelFile]); err != nil {
		return nil, err
	}
	if m.Apps, err = compile(appsModelFile, "", docs[appsModelFile]); err != nil {
		return nil, err
	}
	m.Users.coded = []string{"username", "email", "redirectUri"}
	m.Apps.coded = []string{"name", "redirectUri"}

	m.Credentials = map[CredentialType]*Model{}
	creds, _ := docs[credentialsModelFile]["properties"].(map[string]any)
	for name := range creds {
		if !CredentialType(name).Valid() {
			return nil, Errorf(Invalid, op, "model %s: unknown credential type %q", credentialsModelFile, name)
		}
	}
	for _, t := range CredentialTypes {
		doc, ok := creds[string(t)].(map[string]any)
		if !ok {
			if _, present := creds[string(t)]; present {
				return nil, Errorf(Invalid, op, "model %s: %q must be an object schema", credentialsModelFile, t)
			}
			if m.Credentials[t], err = compile(noPropsModel, "", nil); err != nil {
				return nil, err
			}
			continue
		}
		if m.Credentials[t], err = compile(credentialsModelFile, "#/properties/"+string(t), doc); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// readModelFile reads and decodes one model file, which must hold a JSON object.
func readModelFile(fsys fs.FS, name string) (map[string]any, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be a JSON object (a schema)")
	}
	return doc, nil
}

// addCoreFields declares each of names in doc's properties, with an empty schema,
// unless the file declares it already.
func addCoreFields(doc map[string]any, names ...string) {
	props, ok := doc["properties"].(map[string]any)
	if !ok {
		if _, present := doc["properties"]; present {
			return // not an object: the compiler reports it
		}
		props = map[string]any{}
		doc["properties"] = props
	}
	for _, n := range names {
		if _, ok := props[n]; !ok {
			props[n] = map[string]any{}
		}
	}
}

// fsLoader serves "$ref"s to other model files from the models' fs.FS, and nothing
// else: a model never reaches the network or the working directory.
type fsLoader struct{ fsys fs.FS }

func (l fsLoader) Load(url string) (any, error) {
	name, ok := strings.CutPrefix(url, modelBase)
	if !ok {
		return nil, fmt.Errorf("only references to other model files are allowed")
	}
	b, err := fs.ReadFile(l.fsys, name)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func newModel(sch *jsonschema.Schema, doc map[string]any) *Model {
	m := &Model{schema: sch, props: map[string]map[string]any{}}
	props, _ := doc["properties"].(map[string]any)
	for name, p := range props {
		ps, _ := p.(map[string]any) // a boolean schema has no annotations
		m.props[name] = ps
	}
	req, _ := doc["required"].([]any)
	for _, r := range req {
		if s, ok := r.(string); ok {
			m.required = append(m.required, s)
		}
	}
	return m
}

// Has reports whether the model declares the top-level property name.
func (m *Model) Has(name string) bool {
	_, ok := m.props[name]
	return ok
}

// Required lists the required top-level properties, in the file's order.
func (m *Model) Required() []string {
	return slices.Clone(m.required)
}

// SignupProperties lists, sorted, the properties marked "x-signup": true, which an
// end user may set at public sign-up.
func (m *Model) SignupProperties() []string {
	var out []string
	for name, p := range m.props {
		if b, _ := p["x-signup"].(bool); b {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// ApplyDefaults sets each absent top-level property that has a "default" in the
// schema to a deep copy of it. A property present with a null value is not absent.
func (m *Model) ApplyDefaults(instance map[string]any) {
	for name, p := range m.props {
		def, ok := p["default"]
		if !ok {
			continue
		}
		if _, present := instance[name]; !present {
			instance[name] = deepCopy(def)
		}
	}
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, x := range v {
			c[k] = deepCopy(x)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, x := range v {
			c[i] = deepCopy(x)
		}
		return c
	}
	return v
}

// ValidateOption adjusts a Model.Validate call to the surface writing.
type ValidateOption func(*validateOptions)

type validateOptions struct {
	skipRequired bool
	maxString    int
}

// SkipRequired leaves the model's top-level required list out of the check:
// for surfaces whose own contract does not carry every required property
// (sign-up, dialects, updates that do not touch them). Nested objects keep
// their required lists.
func SkipRequired() ValidateOption { return func(o *validateOptions) { o.skipRequired = true } }

// MaxString bounds, in characters, every string in a top-level property whose
// schema sets no maxLength of its own, nested strings included; the core
// fields (username, email, name, redirectUri) have bounds of their own.
func MaxString(n int) ValidateOption { return func(o *validateOptions) { o.maxString = n } }

// Validate checks instance, a decoded JSON object (numbers as json.Number or
// float64), and returns one FieldError per problem, sorted by field, with Field the
// dotted instance path ("firstname", "address.zip"). Each unknown property and
// each missing required one is its own FieldError ("unknown property", "is
// required"). Details are short and never include the value.
func (m *Model) Validate(instance map[string]any, opts ...ValidateOption) []FieldError {
	var o validateOptions
	for _, opt := range opts {
		opt(&o)
	}
	if instance == nil {
		instance = map[string]any{}
	}
	var out []FieldError
	if err := m.schema.Validate(instance); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return []FieldError{{Detail: "invalid value"}}
		}
		collectFieldErrors(ve, &out, o)
		if len(out) == 0 && !o.skipRequired {
			out = append(out, FieldError{Field: joinPath(ve.InstanceLocation), Detail: "is invalid"})
		}
	}
	if o.maxString > 0 {
		for name, v := range instance {
			if _, own := m.props[name]["maxLength"]; !own && !slices.Contains(m.coded, name) {
				longStrings(v, name, o.maxString, &out)
			}
		}
	}
	slices.SortFunc(out, func(a, b FieldError) int {
		return cmp.Or(cmp.Compare(a.Field, b.Field), cmp.Compare(a.Detail, b.Detail))
	})
	return slices.Compact(out)
}

// longStrings reports each string in v (at path) longer than max characters.
func longStrings(v any, path string, max int, out *[]FieldError) {
	switch v := v.(type) {
	case string:
		if len(v) > max && utf8.RuneCountInString(v) > max {
			*out = append(*out, FieldError{Field: path, Detail: "must be at most " + strconv.Itoa(max) + " characters"})
		}
	case map[string]any:
		for k, x := range v {
			longStrings(x, path+"."+k, max, out)
		}
	case []any:
		for i, x := range v {
			longStrings(x, path+"."+strconv.Itoa(i), max, out)
		}
	}
}

func joinPath(loc []string, more ...string) string {
	return strings.Join(append(slices.Clone(loc), more...), ".")
}

// collectFieldErrors appends the leaves of the error tree. anyOf and oneOf failures
// are reported once, where they failed, rather than as every branch's complaints.
func collectFieldErrors(ve *jsonschema.ValidationError, out *[]FieldError, o validateOptions) {
	at := func(detail string, more ...string) {
		*out = append(*out, FieldError{Field: joinPath(ve.InstanceLocation, more...), Detail: detail})
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.AnyOf:
		at("does not match any of the allowed schemas")
		return
	case *kind.OneOf:
		if len(k.Subschemas) == 0 {
			at("does not match any of the allowed schemas")
		} else {
			at("matches more than one of the allowed schemas")
		}
		return
	}
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectFieldErrors(c, out, o)
		}
		return
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		if o.skipRequired && len(ve.InstanceLocation) == 0 {
			return
		}
		for _, p := range k.Missing {
			at("is required", p)
		}
	case *kind.DependentRequired:
		for _, p := range k.Missing {
			at("is required when "+k.Prop+" is present", p)
		}
	case *kind.Dependency:
		for _, p := range k.Missing {
			at("is required when "+k.Prop+" is present", p)
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			at("unknown property", p)
		}
	case *kind.PropertyNames:
		at("is not an allowed property name", k.Property)
	case *kind.Type:
		at("must be of type " + strings.Join(k.Want, " or "))
	case *kind.Format:
		at("must be a valid " + k.Want)
	case *kind.Enum:
		at("must be one of the allowed values")
	case *kind.Const:
		at("must be the allowed value")
	case *kind.MinLength:
		at("must be at least " + strconv.Itoa(k.Want) + " characters")
	case *kind.MaxLength:
		at("must be at most " + strconv.Itoa(k.Want) + " characters")
	case *kind.Pattern:
		at("must match the pattern " + k.Want)
	case *kind.Minimum:
		at("must be at least " + ratString(k.Want))
	case *kind.Maximum:
		at("must be at most " + ratString(k.Want))
	case *kind.ExclusiveMinimum:
		at("must be greater than " + ratString(k.Want))
	case *kind.ExclusiveMaximum:
		at("must be less than " + ratString(k.Want))
	case *kind.MultipleOf:
		at("must be a multiple of " + ratString(k.Want))
	case *kind.MinItems:
		at("must have at least " + strconv.Itoa(k.Want) + " items")
	case *kind.MaxItems:
		at("must have at most " + strconv.Itoa(k.Want) + " items")
	case *kind.UniqueItems:
		at("must not contain duplicate items")
	case *kind.MinProperties:
		at("must have at least " + strconv.Itoa(k.Want) + " properties")
	case *kind.MaxProperties:
		at("must have at most " + strconv.Itoa(k.Want) + " properties")
	case *kind.FalseSchema:
		at("is not allowed")
	case *kind.Not:
		at("matches a schema it must not match")
	case *kind.InvalidJsonValue:
		at("is not a JSON value")
	default:
		at("is invalid")
	}
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
