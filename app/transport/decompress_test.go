package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/pingpong/pingpong/app/budget"
)

// batchBytes are a batch's records as written with codec.
type batchBytes struct {
	codec kgo.CompressionCodecType
	bytes []byte
}

// compressed writes data with each codec as a Kafka producer would; snappy both raw and in the
// xerial framing of Java producers.
func compressed(t *testing.T, data []byte) map[string]struct {
	codec kgo.CompressionCodecType
	bytes []byte
} {
	t.Helper()
	out := map[string]struct {
		codec kgo.CompressionCodecType
		bytes []byte
	}{}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write(data)
	_ = w.Close()
	out["gzip"] = struct {
		codec kgo.CompressionCodecType
		bytes []byte
	}{kgo.CodecGzip, gz.Bytes()}
	var l4 bytes.Buffer
	lw := lz4.NewWriter(&l4)
	_, _ = lw.Write(data)
	_ = lw.Close()
	out["lz4"] = struct {
		codec kgo.CompressionCodecType
		bytes []byte
	}{kgo.CodecLz4, l4.Bytes()}
	enc, _ := zstd.NewWriter(nil)
	out["zstd"] = struct {
		codec kgo.CompressionCodecType
		bytes []byte
	}{kgo.CodecZstd, enc.EncodeAll(data, nil)}
	out["snappy"] = struct {
		codec kgo.CompressionCodecType
		bytes []byte
	}{kgo.CodecSnappy, s2.EncodeSnappy(nil, data)}
	xerial := append(append([]byte{}, xerialPrefix...), 0, 0, 0, 1, 0, 0, 0, 1)
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		block := s2.EncodeSnappy(nil, rest[:n])
		xerial = binary.BigEndian.AppendUint32(xerial, uint32(len(block)))
		xerial = append(xerial, block...)
		rest = rest[n:]
	}
	out["snappy, xerial framing"] = struct {
		codec kgo.CompressionCodecType
		bytes []byte
	}{kgo.CodecSnappy, xerial}
	return out
}

func TestDecodedBatchesAreHeldInTheBudgetUntilPutBack(t *testing.T) {
	data := bytes.Repeat([]byte("ping "), 200_000) // 1 MB
	for name, c := range compressed(t, data) {
		t.Run(name, func(t *testing.T) {
			b := budget.New(4 << 20)
			d := newBudgetedDecompressor(b)
			out, err := d.Decompress(c.bytes, c.codec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("decoded %d bytes that differ from the %d written", len(out), len(data))
			}
			if b.Used() != int64(cap(out)) {
				t.Fatalf("the budget holds %d bytes for a batch of %d decoded", b.Used(), cap(out))
			}
			d.PutDecompressBytes(out[:cap(out)])
			if b.Used() != 0 {
				t.Fatalf("the budget holds %d bytes once the batch is put back", b.Used())
			}
		})
	}
}

func TestABatchPastTheBudgetIsUndecodable(t *testing.T) {
	data := bytes.Repeat([]byte("p"), 3<<20)
	for name, c := range compressed(t, data) {
		t.Run(name, func(t *testing.T) {
			b := budget.New(1 << 20)
			_, err := newBudgetedDecompressor(b).Decompress(c.bytes, c.codec)
			if !errors.Is(err, errUndecodable) {
				t.Fatalf("a batch of 3 MiB decoded under a budget of 1 MiB: %v", err)
			}
			if b.Used() != 0 {
				t.Fatalf("the budget holds %d bytes for a batch refused", b.Used())
			}
		})
	}
}

func TestCorruptOrUnknownBatchesAreUndecodable(t *testing.T) {
	d := newBudgetedDecompressor(budget.New(1 << 20))
	for name, c := range map[string]struct {
		codec kgo.CompressionCodecType
		data  []byte
	}{
		"unknown codec 6":  {6, []byte("anything")},
		"corrupt gzip":     {kgo.CodecGzip, []byte("\x1f\x8b not gzip at all")},
		"corrupt zstd":     {kgo.CodecZstd, []byte("\x28\xb5\x2f\xfd garbage")},
		"corrupt lz4":      {kgo.CodecLz4, []byte("\x04\x22\x4d\x18 garbage")},
		"corrupt snappy":   {kgo.CodecSnappy, []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2}},
		"truncated xerial": {kgo.CodecSnappy, append(append([]byte{}, xerialPrefix...), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 9)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := d.Decompress(c.data, c.codec); !errors.Is(err, errUndecodable) {
				t.Fatalf("want an undecodable batch, got %v", err)
			}
		})
	}
}

func TestABatchThatDoesNotFitNowWaitsForRoom(t *testing.T) {
	data := bytes.Repeat([]byte("p"), 600<<10)
	zstdBatch := compressed(t, data)["zstd"]
	b := budget.New(1 << 20)
	d := newBudgetedDecompressor(b)
	first, err := d.Decompress(zstdBatch.bytes, zstdBatch.codec)
	if err != nil {
		t.Fatal(err)
	}
	var full *budgetFullError
	if _, err := d.Decompress(zstdBatch.bytes, zstdBatch.codec); !errors.As(err, &full) || full.need < int64(len(data)) {
		t.Fatalf("a second batch of 600 KiB in a budget of 1 MiB holding the first: want it refused for now, got %v", err)
	}
	if errors.Is(err, errUndecodable) {
		t.Fatal("a batch refused for now must not be reported as undecodable: it would be poisoned")
	}
	d.PutDecompressBytes(first[:cap(first)])
	if _, err := d.Decompress(zstdBatch.bytes, zstdBatch.codec); err != nil {
		t.Fatalf("once the first batch is put back: %v", err)
	}
}
