package bidder

import (
	"encoding/json"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// The wire types below are the part of an OpenRTB 2.6 BidRequest the
// bidder reads, with openrtb2's field names, JSON keys and Go types. The
// decoder fills them and skips (but still validates as JSON) everything
// else: a user agent, sua, schain, content, gpid and the many other fields a
// real exchange sends cost a syntax check instead of allocations.
// copyInto then moves them into the openrtb2 types the rest of the bidder
// works with, backed by the pooled request state.
//
// Semantics are encoding/json's for every field read (same keys, same
// case-insensitive matching, same type errors); a type error in a field the
// bidder never reads is no longer a 400 (TestDecodeMatchesStdlib and
// FuzzCodec check both). A field the bidder starts to read must be added
// here and to readView in codec_test.go.

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

func (g *wireGeo) geo() openrtb2.Geo {
	return openrtb2.Geo{Country: g.Country, Region: g.Region, UTCOffset: g.UTCOffset}
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

// copyInto fills st.req from w, using st's pooled objects for the nested
// structs so a request allocates none of them. A nil slice stays nil and an
// empty one empty, as encoding/json leaves them.
func (w *wireRequest) copyInto(st *bidState) {
	req := &st.req
	req.ID, req.AT, req.TMax, req.BCat, req.BAdv = w.ID, w.AT, w.TMax, w.BCat, w.BAdv
	if w.Imp != nil {
		req.Imp = st.imps[:0:cap(st.imps)]
		for i := range w.Imp {
			wi := &w.Imp[i]
			req.Imp = append(req.Imp, openrtb2.Imp{ID: wi.ID, BidFloor: wi.BidFloor, BidFloorCur: wi.BidFloorCur, Secure: wi.Secure})
			imp := &req.Imp[len(req.Imp)-1]
			if b := wi.Banner; b != nil {
				st.banners = append(st.banners, openrtb2.Banner{W: b.W, H: b.H})
				ob := &st.banners[len(st.banners)-1]
				if b.Format != nil {
					start := len(st.formats)
					for _, f := range b.Format {
						st.formats = append(st.formats, openrtb2.Format{W: f.W, H: f.H})
					}
					ob.Format = st.formats[start:len(st.formats):len(st.formats)]
				}
				imp.Banner = ob
			}
			if n := wi.Native; n != nil {
				st.natives = append(st.natives, openrtb2.Native{Request: n.Request})
				imp.Native = &st.natives[len(st.natives)-1]
			}
		}
		st.imps = req.Imp
	}
	if s := w.Site; s != nil {
		st.site = openrtb2.Site{Domain: s.Domain, Cat: s.Cat, Page: s.Page}
		req.Site = &st.site
	}
	if a := w.App; a != nil {
		st.app = openrtb2.App{Bundle: a.Bundle, Cat: a.Cat}
		req.App = &st.app
	}
	if d := w.Device; d != nil {
		st.device = openrtb2.Device{Lmt: d.Lmt, DeviceType: d.DeviceType, OS: d.OS, IFA: d.IFA}
		if g := d.Geo; g != nil {
			st.deviceGeo = g.geo()
			st.device.Geo = &st.deviceGeo
		}
		req.Device = &st.device
	}
	if u := w.User; u != nil {
		st.user = openrtb2.User{ID: u.ID, BuyerUID: u.BuyerUID, Consent: u.Consent, Ext: u.Ext}
		if g := u.Geo; g != nil {
			st.userGeo = g.geo()
			st.user.Geo = &st.userGeo
		}
		if u.EIDs != nil {
			st.user.EIDs = st.eids[:0:cap(st.eids)]
			for _, e := range u.EIDs {
				oe := openrtb2.EID{Source: e.Source}
				if e.UIDs != nil {
					start := len(st.uids)
					for _, id := range e.UIDs {
						st.uids = append(st.uids, openrtb2.UID{ID: id.ID})
					}
					oe.UIDs = st.uids[start:len(st.uids):len(st.uids)]
				}
				st.user.EIDs = append(st.user.EIDs, oe)
			}
			st.eids = st.user.EIDs
		}
		req.User = &st.user
	}
	if r := w.Regs; r != nil {
		st.regs = openrtb2.Regs{COPPA: r.COPPA, GDPR: r.GDPR, USPrivacy: r.USPrivacy, GPP: r.GPP, GPPSID: r.GPPSID, Ext: r.Ext}
		req.Regs = &st.regs
	}
}
