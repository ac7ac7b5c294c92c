package audit

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestShippingLag(t *testing.T) {
	dir := t.TempDir()
	if n, age, err := shippingLag(dir, time.Now()); err != nil || n != 0 || age != 0 {
		t.Fatalf("empty dir: %d %s %v, want nothing behind", n, age, err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	first := `{"hash":"x","time":"` + t0.Format(time.RFC3339Nano) + `"}` + "\n"
	second := `{"hash":"y","time":"` + t0.Add(time.Minute).Format(time.RFC3339Nano) + `"}` + "\n"
	os.WriteFile(filepath.Join(dir, SpoolFile), []byte(first+second), 0o600)
	now := t0.Add(10 * time.Minute)
	if n, age, err := shippingLag(dir, now); err != nil || n != int64(len(first+second)) || age != 10*time.Minute {
		t.Errorf("nothing shipped: %d %s %v, want all bytes and 10m", n, age, err)
	}
	os.WriteFile(filepath.Join(dir, ShippedFile), []byte(strconv.Itoa(len(first))+"\n"), 0o600)
	if n, age, err := shippingLag(dir, now); err != nil || n != int64(len(second)) || age != 9*time.Minute {
		t.Errorf("first shipped: %d %s %v, want the second line and 9m", n, age, err)
	}
	os.WriteFile(filepath.Join(dir, ShippedFile), []byte(strconv.Itoa(len(first+second))+"\n"), 0o600)
	if n, age, err := shippingLag(dir, now); err != nil || n != 0 || age != 0 {
		t.Errorf("all shipped: %d %s %v, want nothing behind", n, age, err)
	}
}
