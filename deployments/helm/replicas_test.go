package helm_test

import (
	"strings"
	"testing"
)

// TestReplicaCountHasOneOwner: the Deployment sets .spec.replicas only when nothing else owns the
// count. Whoever else scales it (an autoscaler, kubectl scale, an operator) keeps it through
// `helm upgrade`: a count in the manifest would be reset by Helm 3's three-way merge, and make
// Helm 4's server-side apply fail on a field-manager conflict.
func TestReplicaCountHasOneOwner(t *testing.T) {
	hpa := map[string]any{"autoscaling": map[string]any{"hpa": map[string]any{"enabled": true}}}
	keda := map[string]any{"autoscaling": map[string]any{"keda": map[string]any{"enabled": true}}}
	external := map[string]any{"replicaCountFromChart": false, "replicaCount": 3}
	for _, tc := range []struct {
		name     string
		values   map[string]any
		replicas int32 // 0: not set
		notes    string
	}{
		{"defaults: the chart", nil, 2, ""},
		{"replicaCount", map[string]any{"replicaCount": 4}, 4, ""},
		{"an HPA", hpa, 0, ""},
		{"KEDA", keda, 0, ""},
		{"someone else (replicaCountFromChart false)", external, 0, "kubectl -n pingpong scale deploy/pingpong --replicas=3"},
		{"someone else and an HPA", merge(external, hpa), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, tc.values)
			got := r.deployment.Spec.Replicas
			switch {
			case tc.replicas == 0 && got != nil:
				t.Errorf("the Deployment sets replicas: %d; another owner's count would be reset or conflict on upgrade", *got)
			case tc.replicas != 0 && got == nil:
				t.Errorf("the Deployment sets no replicas, want %d", tc.replicas)
			case tc.replicas != 0 && *got != tc.replicas:
				t.Errorf("the Deployment sets replicas: %d, want %d", *got, tc.replicas)
			}
			if tc.notes != "" && !strings.Contains(r.notes, tc.notes) {
				t.Errorf("NOTES.txt does not say how to scale (%q):\n%s", tc.notes, r.notes)
			}
			if tc.notes == "" && strings.Contains(r.notes, "leaves the replica count to you") {
				t.Errorf("NOTES.txt says the count is left to the user:\n%s", r.notes)
			}
		})
	}
	// The chart does not set the count, so it does not refuse one above the partitions either.
	render(t, map[string]any{"replicaCountFromChart": false, "replicaCount": 99})
}
