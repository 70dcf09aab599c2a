package loadtest

import (
	"context"
	"os"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestMain lets the test binary serve as the child of ChildNoop.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-noop-child" {
		if err := ServeNoop(context.Background(), "127.0.0.1:0", os.Stdout, os.Stdin); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestChildNoop(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip("no executable:", err)
	}
	url, stop, err := ChildNoop(exe, "-noop-child")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url + "/openrtb2/bid")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetBodyString(`{"id":"1","imp":[{"id":"1"}]}`)
	client := &fasthttp.Client{}
	if err := client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusNoContent || string(resp.Header.Peek("x-openrtb-version")) != "2.6" {
		t.Errorf("no-op answered %d, version %q", resp.StatusCode(), resp.Header.Peek("x-openrtb-version"))
	}
	client.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := client.Do(req, resp); err == nil {
		t.Error("the child still answers after stop")
	}
}

func TestChildNoopThatFails(t *testing.T) {
	if _, _, err := ChildNoop("/bin/false")(context.Background()); err == nil {
		t.Error("a child that exits at once was taken for a server")
	}
}
