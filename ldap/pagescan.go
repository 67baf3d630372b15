package ldap

import (
	"encoding/json"
	"errors"
)

// pageScan reads one page of a paginated list as the core sends it,
// {"pagination": {"next": N, ...}, "results": [...], ...}, handing each
// item of results to each as a slice of the page, without copying it.
// The page must be valid JSON (json.Valid, or encoding/json, which checks
// before calling UnmarshalJSON), so the scanner below only has to find
// where values end.
type pageScan struct {
	each func([]byte) error // nil: only read pagination.next
	next int
	err  error // from each, which stops the scan
}

var errPageShape = errors.New("a list page is not an object with a results array")

func (p *pageScan) UnmarshalJSON(data []byte) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return errPageShape
	}
	i++
	for {
		i = skipSpace(data, i)
		if i < len(data) && data[i] == '}' {
			return nil
		}
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		keyStart := i
		i = skipValue(data, i)
		key := data[keyStart:i]
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return errPageShape
		}
		i = skipSpace(data, i+1)
		valStart := i
		i = skipValue(data, i)
		val := data[valStart:i]
		switch string(key) {
		case `"results"`:
			if p.each == nil {
				break
			}
			if err := p.items(val); err != nil {
				return err
			}
		case `"pagination"`:
			var pg struct {
				Next float64 `json:"next"`
			}
			if err := json.Unmarshal(val, &pg); err != nil {
				return err
			}
			p.next = int(pg.Next)
		}
		if i >= len(data) {
			return errPageShape
		}
	}
}

// items calls each for every element of a JSON array.
func (p *pageScan) items(arr []byte) error {
	if len(arr) == 0 || arr[0] != '[' {
		return errPageShape
	}
	i := 1
	for {
		i = skipSpace(arr, i)
		if i >= len(arr) || arr[i] == ']' {
			return nil
		}
		if arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
		start := i
		i = skipValue(arr, i)
		if p.err == nil {
			p.err = p.each(arr[start:i])
		}
		if p.err != nil {
			// The page is valid JSON; what each refused ends the listing.
			return nil
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	// A number, true, false or null ends at a delimiter.
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r', ':':
			return i
		}
		i++
	}
	return i
}

// skipString returns the end of the JSON string starting at b[i] (a quote).
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}
