package memo

import (
	"strconv"
	"testing"
)

// TestMemo: a value put is got back, the memo keeps at most two generations,
// and a hit in the old generation survives the next turn.
func TestMemo(t *testing.T) {
	m := New[int](10)
	m.Put("a", 1)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %d, %v", v, ok)
	}
	if _, ok := m.Get("b"); ok {
		t.Fatal("Get(b) found a value never put")
	}
	for i := range 100 {
		m.Put(strconv.Itoa(i), i)
		if n := m.Len(); n > 20 {
			t.Fatalf("memo holds %d entries, want at most 20", n)
		}
	}
	// "99" is the current generation, "89" to "98" the old one: a hit moves
	// an old entry to the current one.
	if _, ok := m.Get("95"); !ok {
		t.Fatal("an entry of the old generation is gone")
	}
	for i := 100; i < 110; i++ {
		m.Put(strconv.Itoa(i), i)
	}
	if v, ok := m.Get("95"); !ok || v != 95 {
		t.Errorf("an old entry hit just before the turn: %d, %v", v, ok)
	}
}
