package bidder

import (
	"fmt"
	"strconv"

	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/chaser-dsp/chaser/creative"
)

// This file is the bidder's one JSON seam: decodeRequest reads a bid
// request, appendResponse writes a bid response. Swap the decoder here.
//
// The decoder is decode.go's, hand-written for the fields the bidder reads,
// with encoding/json's semantics (FuzzCodec checks that it accepts exactly
// what encoding/json accepts and decodes the same values).

// decodeRequest decodes body into st.req (st fresh from getBidState or
// reset): the fields the bidder reads (wire_test.go lists them). st.req
// borrows body: it is valid while body is unchanged, until st.reset
// (decode.go, "Strings"). On an error st.req is left empty. A panic in the
// decoder on hostile input is an error, never a crash.
func decodeRequest(body []byte, st *bidState) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("decode bid request: panic: %v", v)
		}
		if err != nil {
			st.req = openrtb2.BidRequest{}
		}
		st.dec.data = nil
	}()
	d := &st.dec // in the pooled state: the decoder's method values would move a local one to the heap
	*d = decoder{data: body, st: st}
	return d.decode()
}

// appendResponse appends the JSON of resp to dst, byte for byte what
// encoding/json writes for the fields the bidder sets with HTML escaping off
// (Encoder.SetEscapeHTML(false): an adm is HTML, and \u003c for every "<"
// only makes it longer; TestAppendResponse compares them), without reflection. Fields the bidder never sets are
// written only when set, like omitempty; Ext fields must be valid JSON.
func appendResponse(dst []byte, resp *openrtb2.BidResponse) []byte {
	dst = append(dst, `{"id":`...)
	dst = creative.AppendJSONString(dst, resp.ID)
	if len(resp.SeatBid) > 0 {
		dst = append(dst, `,"seatbid":[`...)
		for i := range resp.SeatBid {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendSeatBid(dst, &resp.SeatBid[i])
		}
		dst = append(dst, ']')
	}
	dst = appendStrField(dst, "bidid", resp.BidID)
	dst = appendStrField(dst, "cur", resp.Cur)
	dst = appendStrField(dst, "customdata", resp.CustomData)
	if resp.NBR != nil {
		dst = append(dst, `,"nbr":`...)
		dst = strconv.AppendInt(dst, int64(*resp.NBR), 10)
	}
	dst = appendRawField(dst, "ext", resp.Ext)
	return append(dst, '}')
}

func appendSeatBid(dst []byte, sb *openrtb2.SeatBid) []byte {
	dst = append(dst, `{"bid":`...)
	if sb.Bid == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i := range sb.Bid {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendBid(dst, &sb.Bid[i])
		}
		dst = append(dst, ']')
	}
	dst = appendStrField(dst, "seat", sb.Seat)
	dst = appendIntField(dst, "group", int64(sb.Group))
	dst = appendRawField(dst, "ext", sb.Ext)
	return append(dst, '}')
}

// appendBid writes a Bid in the field order of openrtb2.Bid's declaration.
func appendBid(dst []byte, b *openrtb2.Bid) []byte {
	dst = append(dst, `{"id":`...)
	dst = creative.AppendJSONString(dst, b.ID)
	dst = append(dst, `,"impid":`...)
	dst = creative.AppendJSONString(dst, b.ImpID)
	dst = append(dst, `,"price":`...)
	dst = appendFloat(dst, b.Price)
	dst = appendStrField(dst, "nurl", b.NURL)
	dst = appendStrField(dst, "burl", b.BURL)
	dst = appendStrField(dst, "lurl", b.LURL)
	dst = appendStrField(dst, "adm", b.AdM)
	dst = appendStrField(dst, "adid", b.AdID)
	dst = appendStrsField(dst, "adomain", b.ADomain)
	dst = appendStrField(dst, "bundle", b.Bundle)
	dst = appendStrField(dst, "iurl", b.IURL)
	dst = appendStrField(dst, "cid", b.CID)
	dst = appendStrField(dst, "crid", b.CrID)
	dst = appendStrField(dst, "tactic", b.Tactic)
	dst = appendIntField(dst, "cattax", int64(b.CatTax))
	dst = appendStrsField(dst, "cat", b.Cat)
	if len(b.Attr) > 0 {
		dst = append(dst, `,"attr":[`...)
		for i, a := range b.Attr {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(a), 10)
		}
		dst = append(dst, ']')
	}
	if len(b.APIs) > 0 {
		dst = append(dst, `,"apis":[`...)
		for i, a := range b.APIs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(a), 10)
		}
		dst = append(dst, ']')
	}
	dst = appendIntField(dst, "api", int64(b.API))
	dst = appendIntField(dst, "protocol", int64(b.Protocol))
	dst = appendIntField(dst, "qagmediarating", int64(b.QAGMediaRating))
	dst = appendStrField(dst, "language", b.Language)
	dst = appendStrField(dst, "langb", b.LangB)
	dst = appendStrField(dst, "dealid", b.DealID)
	dst = appendIntField(dst, "w", b.W)
	dst = appendIntField(dst, "h", b.H)
	dst = appendIntField(dst, "wratio", b.WRatio)
	dst = appendIntField(dst, "hratio", b.HRatio)
	dst = appendIntField(dst, "exp", b.Exp)
	dst = appendIntField(dst, "dur", b.Dur)
	dst = appendIntField(dst, "mtype", int64(b.MType))
	dst = appendIntField(dst, "slotinpod", int64(b.SlotInPod))
	dst = appendRawField(dst, "ext", b.Ext)
	return append(dst, '}')
}

func appendStrField(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return creative.AppendJSONString(dst, v)
}

func appendStrsField(dst []byte, key string, v []string) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':', '[')
	for i, s := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = creative.AppendJSONString(dst, s)
	}
	return append(dst, ']')
}

func appendIntField(dst []byte, key string, v int64) []byte {
	if v == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, v, 10)
}

func appendRawField(dst []byte, key string, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return append(dst, v...) // the bidder never sets ext; callers pass valid JSON
}

// appendFloat formats a float64 as encoding/json does (ES6 number
// formatting). Prices are finite: decide computes them from micros.
func appendFloat(dst []byte, f float64) []byte {
	abs := f
	if abs < 0 {
		abs = -abs
	}
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
