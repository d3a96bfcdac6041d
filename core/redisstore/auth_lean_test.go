package redisstore

import (
	"reflect"
	"testing"
)

// TestLeanRecordsMatch: each field of the lean records a verification
// decodes has the same name, type and JSON tag as the full record's, so the
// two decode the same stored JSON alike.
func TestLeanRecordsMatch(t *testing.T) {
	for _, c := range []struct{ lean, full any }{{userAuthRecord{}, userRecord{}}, {credAuthRecord{}, credRecord{}}} {
		lt, ft := reflect.TypeOf(c.lean), reflect.TypeOf(c.full)
		for i := range lt.NumField() {
			lf := lt.Field(i)
			ff, ok := ft.FieldByName(lf.Name)
			if !ok || ff.Type != lf.Type || ff.Tag != lf.Tag {
				t.Errorf("%s.%s (%s `%s`) does not match %s's field", lt.Name(), lf.Name, lf.Type, lf.Tag, ft.Name())
			}
		}
	}
}
