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
// budget: it decompresses past it, its data is corrupt, or its codec unknown. It is not
// kgo.ErrMaxDecompress, on purpose: franz-go stops a partition for that error until it is moved
// with SetOffsets, and a SetOffsets for another partition discards the fetches in flight, with
// such an error in them, leaving that partition stopped for good (seen with four such batches at
// once). With any other error franz-go fetches the batch again and reports it again, until the
// subscriber skips it (undecodable.go).
var errUndecodable = errors.New("undecodable record batch")

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

	mu sync.Mutex
	// held is the room of each decoded batch, by the address of its bytes: an address, not a
	// pointer, so that a batch nobody puts back can still be collected, and its room released by
	// the cleanup then.
	held map[uintptr]*heldBytes

	// Decoders are reused, as franz-go's are: each holds buffers of a block or a window.
	zstd, gzip, lz4 sync.Pool
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
	addr     uintptr
	released atomic.Bool
}

func (h *heldBytes) release() {
	if h.released.CompareAndSwap(false, true) {
		h.budget.Release(h.n)
	}
}

func newBudgetedDecompressor(b *budget.Budget) *budgetedDecompressor {
	d := &budgetedDecompressor{budget: b, max: int(b.Limit()), held: map[uintptr]*heldBytes{}}
	d.lz4.New = func() any { return lz4.NewReader(nil) }
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

// Decompress implements kgo.Decompressor. A batch's decoded size is known before its bytes are
// allocated: from snappy's block headers, and for the other codecs by decoding it once into
// nothing (zstd's frame header may omit the size, and may be followed by more frames). So a batch
// is refused before it takes any memory, and it takes exactly its size: no growing buffer leaves
// garbage behind. The price is decoding gzip, lz4 and zstd batches twice; snappy, the default
// codec of franz-go and of this service's answers, once.
func (d *budgetedDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	if codec == kgo.CodecNone {
		return src, nil
	}
	if !d.budget.Fits(1) {
		return nil, &budgetFullError{} // the budget is full already: not even measured
	}
	size, err := d.decodedSize(src, codec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUndecodable, err)
	}
	if size == 0 {
		return []byte{}, nil
	}
	n := int64(size)
	if !d.budget.TryAcquire(n) {
		return nil, &budgetFullError{need: n}
	}
	out := make([]byte, size)
	if err := d.decodeInto(out, src, codec); err != nil {
		d.budget.Release(n)
		return nil, fmt.Errorf("%w: %w", errUndecodable, err)
	}
	ptr := unsafe.SliceData(out)
	h := &heldBytes{budget: d.budget, n: n, addr: uintptr(unsafe.Pointer(ptr))}
	d.mu.Lock()
	d.held[h.addr] = h
	d.mu.Unlock()
	runtime.AddCleanup(ptr, d.collected, h)
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
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b[:cap(b)])))
	d.mu.Lock()
	h := d.held[addr]
	delete(d.held, addr)
	d.mu.Unlock()
	if h != nil {
		h.release()
	}
}

// collected runs once a decoded batch's bytes are collected: a batch franz-go never put back.
func (d *budgetedDecompressor) collected(h *heldBytes) {
	d.mu.Lock()
	if d.held[h.addr] == h { // the address may hold another batch by now
		delete(d.held, h.addr)
	}
	d.mu.Unlock()
	h.release()
}

// errTooLarge is why a batch that decodes past the budget is undecodable.
func (d *budgetedDecompressor) errTooLarge() error {
	return fmt.Errorf("it decompresses to more than the memory budget of %s (MEMORY_BUDGET_BYTES)", formatBytes(int64(d.max)))
}

// decodedSize is the size src decodes to, at most d.max.
func (d *budgetedDecompressor) decodedSize(src []byte, codec kgo.CompressionCodecType) (int, error) {
	if codec == kgo.CodecSnappy {
		return d.snappySize(src)
	}
	r, done, err := d.reader(src, codec)
	if err != nil {
		return 0, err
	}
	defer done()
	n, err := io.Copy(io.Discard, io.LimitReader(r, int64(d.max)+1))
	if err != nil {
		return 0, err
	}
	if n > int64(d.max) {
		return 0, d.errTooLarge()
	}
	return int(n), nil
}

// decodeInto decodes src into out, which is exactly as long as decodedSize said.
func (d *budgetedDecompressor) decodeInto(out, src []byte, codec kgo.CompressionCodecType) error {
	if codec == kgo.CodecSnappy {
		return d.snappyInto(out, src)
	}
	r, done, err := d.reader(src, codec)
	if err != nil {
		return err
	}
	defer done()
	if _, err := io.ReadFull(r, out); err != nil {
		return err
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return errors.New("decodes to more than it did a moment ago")
	}
	return nil
}

// reader streams src's decoded bytes; done gives back what it borrowed.
func (d *budgetedDecompressor) reader(src []byte, codec kgo.CompressionCodecType) (io.Reader, func(), error) {
	switch codec {
	case kgo.CodecGzip:
		r, _ := d.gzip.Get().(*gzip.Reader)
		if r == nil {
			r = new(gzip.Reader)
		}
		if err := r.Reset(bytes.NewReader(src)); err != nil {
			return nil, nil, err
		}
		return r, func() { d.gzip.Put(r) }, nil
	case kgo.CodecLz4:
		r := d.lz4.Get().(*lz4.Reader)
		r.Reset(bytes.NewReader(src))
		return r, func() { r.Reset(nil); d.lz4.Put(r) }, nil
	case kgo.CodecZstd:
		dec := d.zstd.Get().(*zstd.Decoder)
		if err := dec.Reset(bytes.NewReader(src)); err != nil {
			d.zstd.Put(dec)
			return nil, nil, err
		}
		return dec, func() { _ = dec.Reset(nil); d.zstd.Put(dec) }, nil
	}
	return nil, nil, fmt.Errorf("unknown compression codec %d", codec)
}

// xerialPrefix starts snappy framed the way Java producers write it (xerial's snappy-java
// stream): a 16-byte header, then blocks, each a big-endian length and a raw snappy block.
var xerialPrefix = []byte{130, 83, 78, 65, 80, 80, 89, 0}

// xerialBlocks splits xerial-framed snappy into its raw blocks, or returns nil for raw snappy.
func xerialBlocks(src []byte) ([][]byte, error) {
	if len(src) <= 16 || !bytes.HasPrefix(src, xerialPrefix) {
		return nil, nil
	}
	var blocks [][]byte
	for rest := src[16:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("malformed xerial snappy framing")
		}
		size := int(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if size > len(rest) {
			return nil, errors.New("malformed xerial snappy framing")
		}
		blocks, rest = append(blocks, rest[:size]), rest[size:]
	}
	return blocks, nil
}

// snappySize sums the decoded lengths that snappy blocks carry in their headers.
func (d *budgetedDecompressor) snappySize(src []byte) (int, error) {
	blocks, err := xerialBlocks(src)
	if err != nil {
		return 0, err
	}
	if blocks == nil {
		blocks = [][]byte{src}
	}
	total := 0
	for _, block := range blocks {
		n, err := s2.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if total += n; total > d.max {
			return 0, d.errTooLarge()
		}
	}
	return total, nil
}

func (d *budgetedDecompressor) snappyInto(out, src []byte) error {
	blocks, err := xerialBlocks(src)
	if err != nil {
		return err
	}
	if blocks == nil {
		blocks = [][]byte{src}
	}
	at := 0
	for _, block := range blocks {
		n, _ := s2.DecodedLen(block) // checked by snappySize
		if _, err := s2.Decode(out[at:at+n], block); err != nil {
			return err
		}
		at += n
	}
	return nil
}
