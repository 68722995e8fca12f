package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxSchemaCauses bounds how many violations a schema error lists; the text
// ends up in a dead-letter field, not in a report.
const maxSchemaCauses = 5

// schemaErrorText renders a validation error as one line listing the leaf
// violations ("at '/total': got string, want number; ..."), which is what an
// operator reading a dead-lettered entry needs. The library's own Error()
// is a multi-line tree that starts with the schema URL.
func schemaErrorText(err error) string {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) { // the schema itself is invalid; it does not Unwrap
		err = sve.Err
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return oneLine(err.Error())
	}
	p := message.NewPrinter(language.English)
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			leaves = append(leaves, fmt.Sprintf("at '/%s': %s", strings.Join(e.InstanceLocation, "/"), e.ErrorKind.LocalizedString(p)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(leaves) > maxSchemaCauses {
		leaves = append(leaves[:maxSchemaCauses], fmt.Sprintf("and %d more", len(leaves)-maxSchemaCauses))
	}
	return strings.Join(leaves, "; ")
}
