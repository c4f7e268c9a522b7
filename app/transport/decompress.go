package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
)

// errUndecodable is what budgetedDecompressor returns for a batch it cannot decode within the
// bound. It is kgo.ErrMaxDecompress, so that franz-go reports any such batch as
// kgo.ErrDecompressTooLarge, with the offsets it covers and the partition stopped until it is
// skipped (SetOffsets): a corrupt batch or an unknown codec would otherwise be fetched again and
// fail again for ever. Why it failed is read again from the batch itself (see undecodable.go).
var errUndecodable = kgo.ErrMaxDecompress

// budgetedDecompressor decodes fetched batches for franz-go, and holds the bytes of each decoded
// batch against the instance's budget until franz-go puts them back (kgo.PoolDecompressBytes),
// which it does once every record of the batch has been recycled.
//
// A batch that does not fit is refused with a budgetFullError, and its partition waits for room,
// paused (the subscriber's fetchFailed), rather than the process growing. It does not wait here:
// this runs while franz-go reads a whole fetch response, and the records decoded before it in
// the same response reach the subscriber only once the response is read, so waiting here for
// the room they hold would wait for ever. franz-go keeps a partition's records decoded before a
// refused batch and fetches again from the refused batch.
//
// franz-go bounds its own decompressor with MaxDecompressBatchBytes, but a custom one "must bound
// itself" (kgo.WithDecompressor), and the default one is the only way to count what a batch
// decodes to before its records exist: so the codecs are called here, with the same libraries
// and the same bounds as franz-go's (compression.go), and no batch decodes past max.
type budgetedDecompressor struct {
	budget *budget.Budget
	max    int

	mu   sync.Mutex
	held map[*byte]*heldBytes // by the decoded slice's backing array

	zstd sync.Pool
}

// budgetFullError refuses a batch that does not fit in the budget now; need is its decoded size,
// 0 when it was refused before it was decoded.
type budgetFullError struct{ need int64 }

func (e *budgetFullError) Error() string {
	return "the memory budget is full: the batch is fetched again once there is room"
}

// heldBytes is the room one decoded batch holds; released once, by PutDecompressBytes or, should
// franz-go drop the batch on an error path without putting it back, by the cleanup that runs when
// the collector frees it.
type heldBytes struct {
	budget   *budget.Budget
	n        int64
	released atomic.Bool
}

func (h *heldBytes) release() {
	if h.released.CompareAndSwap(false, true) {
		h.budget.Release(h.n)
	}
}

func newBudgetedDecompressor(b *budget.Budget) *budgetedDecompressor {
	d := &budgetedDecompressor{budget: b, max: int(b.Limit()), held: map[*byte]*heldBytes{}}
	d.zstd.New = func() any {
		dec, _ := zstd.NewReader(nil,
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(d.max)),
		)
		return dec
	}
	return d
}

// Decompress implements kgo.Decompressor.
func (d *budgetedDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	if codec == kgo.CodecNone {
		return src, nil
	}
	if !d.budget.Fits(1) {
		return nil, &budgetFullError{} // refused before decoding it: the budget is full already
	}
	out, err := d.decode(src, codec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUndecodable, err)
	}
	if cap(out) == 0 {
		return out, nil
	}
	n := int64(cap(out))
	if !d.budget.TryAcquire(n) {
		return nil, &budgetFullError{need: n}
	}
	h := &heldBytes{budget: d.budget, n: n}
	ptr := unsafe.SliceData(out[:cap(out)])
	d.mu.Lock()
	d.held[ptr] = h
	d.mu.Unlock()
	runtime.AddCleanup(ptr, func(h *heldBytes) { h.release() }, h)
	return out, nil
}

// GetDecompressBytes implements kgo.PoolDecompressBytes; Decompress allocates its own output.
func (*budgetedDecompressor) GetDecompressBytes([]byte, kgo.CompressionCodecType) []byte {
	return nil
}

// PutDecompressBytes implements kgo.PoolDecompressBytes: the batch's records are all recycled,
// its room is released. The slice is left to the collector.
func (d *budgetedDecompressor) PutDecompressBytes(b []byte) {
	if cap(b) == 0 {
		return
	}
	ptr := unsafe.SliceData(b[:cap(b)])
	d.mu.Lock()
	h := d.held[ptr]
	delete(d.held, ptr)
	d.mu.Unlock()
	if h != nil {
		h.release()
	}
}

// decode decompresses src, never past d.max bytes.
func (d *budgetedDecompressor) decode(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	switch codec {
	case kgo.CodecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, err
		}
		return readAtMost(r, d.max)
	case kgo.CodecSnappy:
		return d.snappy(src)
	case kgo.CodecLz4:
		return readAtMost(lz4.NewReader(bytes.NewReader(src)), d.max)
	case kgo.CodecZstd:
		dec := d.zstd.Get().(*zstd.Decoder)
		defer d.zstd.Put(dec)
		out, err := dec.DecodeAll(src, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, fmt.Errorf("decompresses to more than %d bytes", d.max)
		}
		return out, err
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

func readAtMost(r io.Reader, max int) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(out) > max {
		return nil, fmt.Errorf("decompresses to more than %d bytes", max)
	}
	return out, nil
}

// xerialPrefix starts snappy framed the way Java producers write it (xerial's snappy-java
// stream): a 16-byte header, then blocks, each a big-endian length and a raw snappy block.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

func (d *budgetedDecompressor) snappy(src []byte) ([]byte, error) {
	if len(src) <= 16 || !bytes.HasPrefix(src, xerialPrefix) {
		if n, err := s2.DecodedLen(src); err != nil {
			return nil, err
		} else if n > d.max {
			return nil, fmt.Errorf("decompresses to more than %d bytes", d.max)
		}
		return s2.Decode(nil, src)
	}
	// The blocks' decoded lengths are summed and bounded before anything is decoded.
	var blocks [][]byte
	total := 0
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("malformed xerial snappy framing")
		}
		size := int(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if size > len(rest) {
			return nil, errors.New("malformed xerial snappy framing")
		}
		n, err := s2.DecodedLen(rest[:size])
		if err != nil {
			return nil, err
		}
		if total += n; total > d.max {
			return nil, fmt.Errorf("decompresses to more than %d bytes", d.max)
		}
		blocks, rest = append(blocks, rest[:size]), rest[size:]
	}
	out := make([]byte, 0, total)
	for _, block := range blocks {
		decoded, err := s2.Decode(out[len(out):cap(out)], block)
		if err != nil {
			return nil, err
		}
		out = out[:len(out)+len(decoded)]
	}
	return out, nil
}
