package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// AdminError is an error answer of Chaser's admin API.
type AdminError struct {
	Method, Path string
	Status       int
	// Msg and Field are the answer's "error" and "field".
	Msg, Field string
}

func (e *AdminError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// adminClient calls Chaser's admin API with the admin key.
type adminClient struct {
	base, token string
	http        *http.Client
}

// call sends one request; a 2xx JSON answer is decoded into out (when not
// nil), anything else is an *AdminError. size is the body's length, -1 when
// unknown (sent chunked).
func (c *adminClient) call(ctx context.Context, method, path, ctype string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.ContentLength = size
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is chaser serve running with its admin API on %s?)", method, path, err, c.base)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		ae := &AdminError{Method: method, Path: path, Status: resp.StatusCode}
		var e struct{ Error, Field string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			ae.Msg, ae.Field = e.Error, e.Field
		} else {
			ae.Msg = strings.TrimSpace(string(b))
		}
		return ae
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// listAll reads every page of a list endpoint (path already has its query)
// into out, a pointer to a slice, from the answer's field name.
func listAll[T any](ctx context.Context, c *adminClient, path, name string, out *[]T) error {
	cursor := ""
	for {
		p := path + "&limit=1000"
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		var page map[string]json.RawMessage
		if err := c.call(ctx, http.MethodGet, p, "", nil, -1, &page); err != nil {
			return err
		}
		var items []T
		if err := json.Unmarshal(page[name], &items); err != nil {
			return fmt.Errorf("GET %s: decode %s: %w", p, name, err)
		}
		*out = append(*out, items...)
		cursor = ""
		if raw, ok := page["next_cursor"]; ok {
			_ = json.Unmarshal(raw, &cursor)
		}
		if cursor == "" {
			return nil
		}
	}
}
