// Package kubeyaml decodes Kubernetes manifests for the deployment tests.
package kubeyaml

import (
	"errors"

	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// DecodeStrict decodes a YAML document as the API server does: field names are case-sensitive,
// and an unknown or duplicate field is an error (sigs.k8s.io/yaml's UnmarshalStrict would let
// topologykey stand for topologyKey).
func DecodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}
