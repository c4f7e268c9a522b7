package dlq

import (
	"slices"
	"testing"
)

func TestWhereRecordsAre(t *testing.T) {
	for _, tc := range []struct {
		starts, ends map[int32]int64
		want         string
	}{
		{map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}, map[int32]int64{0: 0, 1: 2, 2: 0, 3: 1},
			"records are at 1:0 to 1:1 and 3:0 (the AT column of `pingpong dlq list`)"},
		{map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0}, map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0},
			"so are all the others: the poison queue is empty"},
		{map[int32]int64{0: 0, 1: 5, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0}, map[int32]int64{0: 0, 1: 5, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1},
			"records are at 2:0, 3:0, 4:0, 5:0, 6:0 and another partition (the AT column of `pingpong dlq list`)"},
	} {
		var partitions []int32
		for p := range tc.starts {
			partitions = append(partitions, p)
		}
		slices.Sort(partitions)
		if got := whereRecordsAre(partitions, tc.starts, tc.ends); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
