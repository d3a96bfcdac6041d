package core

import (
	"strings"
	"testing"
)

// TestUsernameScripts: a username's letters come from one script, or from one
// of the combinations UTS #39's "highly restrictive" level allows for Chinese,
// Japanese and Korean; digits, punctuation and combining marks count for none.
// A refused one is Invalid on "username" with a detail naming the scripts.
func TestUsernameScripts(t *testing.T) {
	tests := []struct {
		name, in string
		mixed    string // "" when accepted, else the scripts the detail names
	}{
		{"Latin", "Ada", ""},
		{"Latin with digits, dots and underscores", "ada.lovelace_1815", ""},
		{"Latin with accents", "Ünïcødé", ""},
		{"Latin with a combining mark", "jose\u0301", ""},
		{"an email address", "ada@example.com", ""},
		{"fullwidth Latin", "ＡＤＡ", ""},
		{"pure Cyrillic", "Алиса", ""},
		{"Cyrillic with digits", "иван_42", ""},
		{"pure Greek", "Σωκράτης", ""},
		{"pure Arabic", "مريم", ""},
		{"pure Hebrew", "דוד", ""},
		{"Han", "山田太郎", ""},
		{"Hiragana", "やまだ", ""},
		{"Katakana", "ヤマダ", ""},
		{"Katakana with the prolonged sound mark (Common)", "ターロー", ""},
		{"halfwidth Katakana", "ﾔﾏﾀﾞ", ""},
		{"Japanese: Han and Hiragana", "山田たろう", ""},
		{"Japanese: Han, Hiragana and Katakana", "山田たろうタロウ", ""},
		{"Japanese with Latin", "yamada山田たろう", ""},
		{"Chinese: Han and Bopomofo", "王ㄅㄆ", ""},
		{"Chinese with Latin", "wang王ㄅ", ""},
		{"Korean: Hangul", "김민준", ""},
		{"Korean: Hangul and Han", "김金", ""},
		{"Korean with Latin", "kim김민준", ""},
		{"Cyrillic local part at an ASCII domain", "алиса@example.com", ""},

		{"Latin with a Cyrillic А", "Аda", "Cyrillic and Latin"},
		{"Latin with a Cyrillic о", "bоb", "Latin and Cyrillic"},
		{"Latin with a Greek Alpha", "Αlice", "Greek and Latin"},
		{"Greek with a Latin o", "Σoκράτης", "Greek and Latin"},
		{"Latin, Cyrillic and Greek", "aаα", "Latin, Cyrillic and Greek"},
		{"Cyrillic and Greek", "жω", "Cyrillic and Greek"},
		{"Latin with an Armenian letter", "adaա", "Latin and Armenian"},
		{"Latin with a Cherokee letter", "Ꭺda", "Cherokee and Latin"},
		{"Hiragana and Hangul", "たなか김", "Hiragana and Hangul"},
		{"Katakana and Bopomofo", "カㄅ", "Katakana and Bopomofo"},
		{"Bopomofo and Hangul", "ㄅ김", "Bopomofo and Hangul"},
		{"Cyrillic with Han", "王иван", "Han and Cyrillic"},
		{"a mixed local part", "Аda@example.com", "Cyrillic and Latin"},
		{"a mixed domain", "ada@exаmple.com", "Latin and Cyrillic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateUsername(tt.in)
			if tt.mixed == "" {
				if err != nil {
					t.Fatalf("ValidateUsername(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			checkField(t, err, "username")
			want := "must not mix scripts (here " + tt.mixed + ")"
			if got := FieldsOf(err)[0].Detail; got != want {
				t.Errorf("ValidateUsername(%q) detail %q, want %q", tt.in, got, want)
			}
		})
	}
}

// TestUsernameScriptsBeforeOtherRules: the script rule does not hide the
// other rules' clearer messages, and "Ada" stays valid beside a refused "Аda".
func TestUsernameScriptsBeforeOtherRules(t *testing.T) {
	if err := ValidateUsername("Аda b"); err == nil || !strings.Contains(FieldsOf(err)[0].Detail, "whitespace") {
		t.Errorf("a mixed name with a space: %v, want the whitespace rule", err)
	}
	if ValidateUsername("Ada") != nil || ValidateUsername("Аda") == nil {
		t.Error("Ada and its Cyrillic look-alike are not told apart")
	}
}

func TestJoinNames(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
	}{{nil, ""}, {[]string{"a"}, "a"}, {[]string{"a", "b"}, "a and b"}, {[]string{"a", "b", "c"}, "a, b and c"}} {
		if got := joinNames(tt.in); got != tt.want {
			t.Errorf("joinNames(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
