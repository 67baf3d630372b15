package outpost

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
)

// GetRaw fetches path as Get does (same headers, retries and errors) but,
// instead of decoding the answer, reads its body into buf, which it resets
// first. A caller reading many large pages (an LDAP outpost listing a
// directory of a million users) reuses one buffer for all of them instead
// of leaving a body's worth of garbage per page. The body is not checked
// to be JSON.
func (c *Client) GetRaw(ctx context.Context, path string, query url.Values, buf *bytes.Buffer) error {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := c.api + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: building request: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token())
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := c.rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return fmt.Errorf("GET %s: %w", path, c.redact(err))
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponseBytes+1)); err != nil {
		return fmt.Errorf("GET %s: reading response: %w", path, c.redact(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: http.MethodGet, Path: c.apiPath(path), StatusCode: resp.StatusCode, Body: c.excerpt(buf.Bytes())}
	}
	if buf.Len() > maxResponseBytes {
		return fmt.Errorf("GET %s: response larger than %d bytes", path, maxResponseBytes)
	}
	return nil
}
