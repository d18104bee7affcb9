package discovery

import (
	"context"
	"errors"
	"testing"
)

// TestPump: every row crosses in order; whichever side fails stops the other, and
// the export's failure is reported over the COPY's.
func TestPump(t *testing.T) {
	errExport, errLoad := errors.New("export broke"), errors.New("copy broke")
	tests := []struct {
		name       string
		rows       int
		exportFail int // fail after this many rows; -1 never
		loadFail   int // fail after this many rows; -1 never
		wantN      int64
		wantErr    error
	}{
		{"empty", 0, -1, -1, 0, nil},
		{"one batch and a bit", batchSize + 3, -1, -1, batchSize + 3, nil},
		{"many batches", 10*batchSize + 1, -1, -1, 10*batchSize + 1, nil},
		{"export fails", 5 * batchSize, 2*batchSize + 7, -1, -1, errExport},
		{"copy fails", 5 * batchSize, -1, batchSize + 1, -1, errLoad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			export := func(ctx context.Context, emit func(*int) error) error {
				for i := range tt.rows {
					if i == tt.exportFail {
						return errExport
					}
					v := i
					if err := emit(&v); err != nil {
						return err
					}
				}
				return nil
			}
			load := func(ctx context.Context, next func() (*int, error)) (int64, error) {
				var n int64
				for {
					v, err := next()
					if err != nil {
						return n, err
					}
					if v == nil {
						return n, nil
					}
					if *v != int(n) {
						t.Fatalf("row %d arrived as %d", n, *v)
					}
					if int(n) == tt.loadFail {
						return n, errLoad
					}
					n++
				}
			}
			n, err := pump(context.Background(), export, load)
			if !errors.Is(err, tt.wantErr) || (tt.wantN >= 0 && n != tt.wantN) {
				t.Errorf("got %d, %v; want %d, %v", n, err, tt.wantN, tt.wantErr)
			}
		})
	}
}
