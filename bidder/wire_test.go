package bidder

import (
	"encoding/json"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// The wire types below are the part of an OpenRTB 2.6 BidRequest the
// bidder reads, with openrtb2's field names, JSON keys and Go types: the
// reference definition of what decode.go decodes (into openrtb2 types and
// pooled objects of bidState) and skips (but still validates as JSON). A
// user agent, sua, schain, content, gpid and the many other fields a real
// exchange sends cost a syntax check instead of allocations.
//
// Semantics are encoding/json's for every field read (same keys, same
// case-insensitive matching, same type errors); a type error in a field the
// bidder never reads is not a 400 (TestDecodeMatchesStdlib and FuzzCodec
// check both, decoding these types with encoding/json as the oracle). A
// field the bidder starts to read must be added here, to decode.go and to
// readView in codec_test.go.

type wireRequest struct {
	ID     string      `json:"id"`
	Imp    []wireImp   `json:"imp"`
	Site   *wireSite   `json:"site"`
	App    *wireApp    `json:"app"`
	Device *wireDevice `json:"device"`
	User   *wireUser   `json:"user"`
	AT     int64       `json:"at"`
	TMax   int64       `json:"tmax"`
	BCat   []string    `json:"bcat"`
	BAdv   []string    `json:"badv"`
	Regs   *wireRegs   `json:"regs"`
}

type wireImp struct {
	ID          string      `json:"id"`
	Banner      *wireBanner `json:"banner"`
	Native      *wireNative `json:"native"`
	BidFloor    float64     `json:"bidfloor"`
	BidFloorCur string      `json:"bidfloorcur"`
	Secure      *int8       `json:"secure"`
}

type wireBanner struct {
	Format []wireFormat `json:"format"`
	W      *int64       `json:"w"`
	H      *int64       `json:"h"`
}

type wireFormat struct {
	W int64 `json:"w"`
	H int64 `json:"h"`
}

type wireNative struct {
	Request string `json:"request"`
}

type wireSite struct {
	Domain string   `json:"domain"`
	Cat    []string `json:"cat"`
	Page   string   `json:"page"`
}

type wireApp struct {
	Bundle string   `json:"bundle"`
	Cat    []string `json:"cat"`
}

type wireDevice struct {
	Geo        *wireGeo          `json:"geo"`
	Lmt        *int8             `json:"lmt"`
	DeviceType adcom1.DeviceType `json:"devicetype"`
	OS         string            `json:"os"`
	IFA        string            `json:"ifa"`
}

type wireGeo struct {
	Country   string `json:"country"`
	Region    string `json:"region"`
	UTCOffset int64  `json:"utcoffset"`
}

func (g *wireGeo) geo() *openrtb2.Geo {
	return &openrtb2.Geo{Country: g.Country, Region: g.Region, UTCOffset: g.UTCOffset}
}

type wireUser struct {
	ID       string          `json:"id"`
	BuyerUID string          `json:"buyeruid"`
	Geo      *wireGeo        `json:"geo"`
	Consent  string          `json:"consent"`
	EIDs     []wireEID       `json:"eids"`
	Ext      json.RawMessage `json:"ext"`
}

type wireEID struct {
	Source string    `json:"source"`
	UIDs   []wireUID `json:"uids"`
}

type wireUID struct {
	ID string `json:"id"`
}

type wireRegs struct {
	COPPA     int8            `json:"coppa"`
	GDPR      *int8           `json:"gdpr"`
	USPrivacy string          `json:"us_privacy"`
	GPP       string          `json:"gpp"`
	GPPSID    []int8          `json:"gpp_sid"`
	Ext       json.RawMessage `json:"ext"`
}

// copyInto fills st.req from w (the oracle side of checkDecodeMatches:
// what encoding/json decoded into the wire types, as openrtb2 values). A
// nil slice stays nil and an empty one empty, as encoding/json leaves them.
func (w *wireRequest) copyInto(st *bidState) {
	req := &st.req
	req.ID, req.AT, req.TMax, req.BCat, req.BAdv = w.ID, w.AT, w.TMax, w.BCat, w.BAdv
	if w.Imp != nil {
		req.Imp = make([]openrtb2.Imp, 0, len(w.Imp))
		for i := range w.Imp {
			wi := &w.Imp[i]
			imp := openrtb2.Imp{ID: wi.ID, BidFloor: wi.BidFloor, BidFloorCur: wi.BidFloorCur, Secure: wi.Secure}
			if b := wi.Banner; b != nil {
				imp.Banner = &openrtb2.Banner{W: b.W, H: b.H}
				if b.Format != nil {
					imp.Banner.Format = make([]openrtb2.Format, 0, len(b.Format))
					for _, f := range b.Format {
						imp.Banner.Format = append(imp.Banner.Format, openrtb2.Format{W: f.W, H: f.H})
					}
				}
			}
			if n := wi.Native; n != nil {
				imp.Native = &openrtb2.Native{Request: n.Request}
			}
			req.Imp = append(req.Imp, imp)
		}
	}
	if s := w.Site; s != nil {
		req.Site = &openrtb2.Site{Domain: s.Domain, Cat: s.Cat, Page: s.Page}
	}
	if a := w.App; a != nil {
		req.App = &openrtb2.App{Bundle: a.Bundle, Cat: a.Cat}
	}
	if d := w.Device; d != nil {
		req.Device = &openrtb2.Device{Lmt: d.Lmt, DeviceType: d.DeviceType, OS: d.OS, IFA: d.IFA}
		if g := d.Geo; g != nil {
			req.Device.Geo = g.geo()
		}
	}
	if u := w.User; u != nil {
		req.User = &openrtb2.User{ID: u.ID, BuyerUID: u.BuyerUID, Consent: u.Consent, Ext: u.Ext}
		if g := u.Geo; g != nil {
			req.User.Geo = g.geo()
		}
		if u.EIDs != nil {
			req.User.EIDs = make([]openrtb2.EID, 0, len(u.EIDs))
			for _, e := range u.EIDs {
				oe := openrtb2.EID{Source: e.Source}
				if e.UIDs != nil {
					oe.UIDs = make([]openrtb2.UID, 0, len(e.UIDs))
					for _, id := range e.UIDs {
						oe.UIDs = append(oe.UIDs, openrtb2.UID{ID: id.ID})
					}
				}
				req.User.EIDs = append(req.User.EIDs, oe)
			}
		}
	}
	if r := w.Regs; r != nil {
		req.Regs = &openrtb2.Regs{COPPA: r.COPPA, GDPR: r.GDPR, USPrivacy: r.USPrivacy, GPP: r.GPP, GPPSID: r.GPPSID, Ext: r.Ext}
	}
}
