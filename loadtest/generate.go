package loadtest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/native1"
	nativereq "github.com/prebid/openrtb/v20/native1/request"
	"github.com/prebid/openrtb/v20/openrtb2"
)

// IDLen is the length of every generated request id: 8 hex digits naming the
// run, a dash, and a 15-digit sequence number. Ids have a fixed width so they
// can be written into pre-encoded (even gzipped) bodies in place.
const IDLen = 24

// placeholderID holds the id's place in pre-encoded bodies.
const placeholderID = "00000000-000000000000000"

// idOffset is where the id starts in a plain body: encoding/json writes
// BidRequest.ID first.
const idOffset = len(`{"id":"`)

// gzip framing: a 10-byte header, then a stored deflate block (5-byte header)
// holding the body's prefix up to the end of the id.
const (
	gzipHeaderLen   = 10
	storedHeaderLen = 5
	gzipPrefixStart = gzipHeaderLen + storedHeaderLen
	gzipIDOffset    = gzipPrefixStart + idOffset
	prefixLen       = idOffset + IDLen
)

// ImpSpec is what the simulated exchange remembers of one imp it offered, to
// judge the bids for it.
type ImpSpec struct {
	ID     string
	Floor  float64 // CPM in USD; 0 when none
	Banner bool
	Native bool
}

// template is one pre-encoded request.
type template struct {
	plain []byte // JSON; bytes [idOffset, idOffset+IDLen) hold the id
	gz    []byte // nil, or the gzip form whose id sits at gzipIDOffset
	imps  []ImpSpec
	known bool // the user is one the bidder knows
}

// wire returns the bytes to send before the id is patched in.
func (t *template) wire() []byte {
	if t.gz != nil {
		return t.gz
	}
	return t.plain
}

// patch writes id into body, a copy of wire(), fixing the gzip checksum.
func (t *template) patch(body, id []byte) {
	if t.gz == nil {
		copy(body[idOffset:], id)
		return
	}
	copy(body[gzipIDOffset:], id)
	crc := crc32.ChecksumIEEE(body[gzipPrefixStart : gzipPrefixStart+prefixLen])
	crc = crc32.Update(crc, crc32.IEEETable, t.plain[prefixLen:])
	binary.LittleEndian.PutUint32(body[len(body)-8:], crc)
}

// Pool is a set of distinct pre-encoded bid requests, generated once so the
// generator is not the bottleneck. It is read-only after NewPool and safe for
// concurrent use.
type Pool struct {
	templates []template
}

// Len returns the number of distinct requests.
func (p *Pool) Len() int { return len(p.templates) }

// JSON returns request i as plain JSON, with the placeholder id. The slice is
// shared: do not modify it.
func (p *Pool) JSON(i int) []byte { return p.templates[i].plain }

// Wire returns request i as it goes on the wire (gzip-compressed when
// gzipped is true), with id written into a copy.
func (p *Pool) Wire(i int, id string) (body []byte, gzipped bool) {
	if len(id) != IDLen {
		panic(fmt.Sprintf("loadtest: request id %q must be %d bytes", id, IDLen))
	}
	t := &p.templates[i]
	body = append([]byte(nil), t.wire()...)
	t.patch(body, []byte(id))
	return body, t.gz != nil
}

// Imps returns what request i offered. The slice is shared: do not modify it.
func (p *Pool) Imps(i int) []ImpSpec { return p.templates[i].imps }

// Known reports whether request i's user is one of the known users.
func (p *Pool) Known(i int) bool { return p.templates[i].known }

// NewPool generates t.PoolSize requests with BidRequest.tmax and .at taken
// from tmax and auction.
func NewPool(t Traffic, tmax time.Duration, auction AuctionType) (*Pool, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	g := &generator{
		cfg:     t,
		rng:     rand.New(rand.NewPCG(t.Seed, t.Seed^0x9e3779b97f4a7c15)),
		tmax:    tmax.Milliseconds(),
		at:      auction.at(),
		created: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
	}
	g.consentYes = tcfString(true, g.created, 7)
	g.consentNo = tcfString(false, g.created, 7)
	g.natives = make([]string, 3)
	for i := range g.natives {
		s, err := nativeRequest(i)
		if err != nil {
			return nil, err
		}
		g.natives[i] = s
	}
	p := &Pool{templates: make([]template, t.PoolSize)}
	var zbuf bytes.Buffer
	zw, err := flate.NewWriter(&zbuf, flate.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("loadtest: gzip writer: %w", err)
	}
	for i := range p.templates {
		req, tpl := g.request(i)
		plain, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("loadtest: encode request %d: %w", i, err)
		}
		if !bytes.HasPrefix(plain, []byte(`{"id":"`+placeholderID+`"`)) {
			return nil, fmt.Errorf("loadtest: encoded request %d does not start with its id", i)
		}
		tpl.plain = plain
		if g.rng.Float64() < t.GzipShare {
			tpl.gz, err = patchableGzip(zw, &zbuf, plain)
			if err != nil {
				return nil, fmt.Errorf("loadtest: gzip request %d: %w", i, err)
			}
		}
		p.templates[i] = tpl
	}
	return p, nil
}

// patchableGzip compresses plain into one standard gzip member whose first
// deflate block is stored (uncompressed) and holds plain[:prefixLen], so the
// request id can be rewritten in place; the trailer's CRC is then recomputed.
func patchableGzip(zw *flate.Writer, zbuf *bytes.Buffer, plain []byte) ([]byte, error) {
	zbuf.Reset()
	zw.Reset(zbuf)
	if _, err := zw.Write(plain[prefixLen:]); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, gzipPrefixStart+prefixLen+zbuf.Len()+8)
	// Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
	out = append(out, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff)
	// Stored block, not final: BFINAL=0, BTYPE=00, padded to a byte; LEN, NLEN.
	out = append(out, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(prefixLen))
	out = binary.LittleEndian.AppendUint16(out, ^uint16(prefixLen))
	out = append(out, plain[:prefixLen]...)
	out = append(out, zbuf.Bytes()...) // starts on a byte boundary, ends with the final block
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(plain))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(plain)))
	return out, nil
}

type generator struct {
	cfg                   Traffic
	rng                   *rand.Rand
	tmax, at              int64
	created               time.Time
	consentYes, consentNo string
	natives               []string
}

func (g *generator) chance(p float64) bool { return g.rng.Float64() < p }

func pick[T any](g *generator, xs []T) T { return xs[g.rng.IntN(len(xs))] }

func (g *generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *generator) uuid() string {
	h := g.hex(32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func ptr[T any](v T) *T { return &v }

// request builds request number i.
func (g *generator) request(i int) (*openrtb2.BidRequest, template) {
	cfg := g.cfg
	isApp := !g.chance(cfg.SiteShare)
	req := &openrtb2.BidRequest{
		ID:   placeholderID,
		AT:   g.at,
		TMax: g.tmax,
		Cur:  []string{"USD"},
		Source: &openrtb2.Source{
			FD: ptr[int8](1),
			SChain: &openrtb2.SupplyChain{
				Complete: 1, Ver: "1.0",
				Nodes: []openrtb2.SupplyChainNode{{ASI: "chaser-sim-exchange.example", SID: "sim-" + strconv.Itoa(1000+g.rng.IntN(9000)), HP: ptr[int8](1)}},
			},
		},
	}
	var tpl template

	// Where the user is and which privacy rules apply.
	var place placeInfo
	regs := &openrtb2.Regs{}
	r := g.rng.Float64()
	gdpr := r < cfg.GDPRShare
	switch {
	case gdpr:
		place = pick(g, euPlaces)
		regs.GDPR = ptr[int8](1)
	case r < cfg.GDPRShare+cfg.USPrivacyOptOutShare:
		place = pick(g, usPlaces)
		regs.USPrivacy = "1YYN"
	default:
		place = pick(g, otherPlaces)
		if g.chance(0.2) {
			place = pick(g, usPlaces)
		}
		if place.country == "USA" {
			regs.USPrivacy = "1YNN"
		} else {
			regs.GDPR = ptr[int8](0)
		}
	}
	if g.chance(cfg.COPPAShare) {
		regs.COPPA = 1
	}
	req.Regs = regs

	geo := &openrtb2.Geo{
		Lat: ptr(math.Round((place.lat+g.rng.NormFloat64()*0.02)*1e4) / 1e4),
		Lon: ptr(math.Round((place.lon+g.rng.NormFloat64()*0.02)*1e4) / 1e4),
		// Geo from the IP address; region codes are ISO-3166-2 subdivisions.
		Type:      adcom1.LocationIP,
		Country:   place.country,
		Region:    place.region,
		City:      place.city,
		UTCOffset: place.utcOffset,
	}

	var dev deviceInfo
	if isApp {
		dev = pick(g, appDevices)
	} else {
		dev = pick(g, siteDevices)
	}
	conn := adcom1.ConnectionWIFI
	if dev.devType == adcom1.DevicePC {
		conn = adcom1.ConnectionEthernet
	} else if g.chance(0.4) {
		conn = adcom1.Connection5G
	}
	req.Device = &openrtb2.Device{
		UA: dev.ua, IP: place.ipPrefix + strconv.Itoa(1+g.rng.IntN(254)),
		Geo: geo, DNT: ptr[int8](0), Lmt: ptr[int8](0),
		DeviceType: dev.devType, Make: dev.make, Model: dev.model, OS: dev.os, OSV: dev.osv,
		W: dev.w, H: dev.h, PxRatio: dev.ratio, JS: ptr[int8](1),
		Language: place.lang, ConnectionType: &conn,
	}

	// Publisher and placement.
	var slots [][]size
	if isApp {
		a := pick(g, apps)
		req.App = &openrtb2.App{
			ID: "app-" + a.pubID[4:], Name: a.name, Bundle: a.bundle, StoreURL: a.store,
			Cat: a.cat, Ver: "3." + strconv.Itoa(g.rng.IntN(20)) + ".0",
			Publisher: &openrtb2.Publisher{ID: a.pubID, Name: a.pubName},
		}
		slots = mobileSlots
	} else {
		s := pick(g, sites)
		page := "https://" + s.domain + pick(g, s.paths)
		req.Site = &openrtb2.Site{
			ID: "site-" + s.pubID[4:], Name: s.name, Domain: s.domain, Page: page, Cat: s.cat,
			Ref:       pick(g, []string{"https://www.google.com/", "https://m.search.naver.com/", "https://" + s.domain + "/", ""}),
			Publisher: &openrtb2.Publisher{ID: s.pubID, Name: s.pubName, Domain: s.domain},
		}
		if dev.devType == adcom1.DevicePC {
			slots = siteSlots
			req.Site.Mobile = ptr[int8](0)
		} else {
			slots = mobileSlots
			req.Site.Mobile = ptr[int8](1)
		}
	}

	// The user: known to the bidder, or not.
	user := &openrtb2.User{ID: "x" + g.hex(20)}
	tpl.known = !g.chance(cfg.UnknownShare)
	if isApp {
		req.Device.IFA = g.uuid()
	}
	switch {
	case tpl.known && isApp && len(cfg.KnownIFAs) > 0:
		req.Device.IFA = pick(g, cfg.KnownIFAs)
	case tpl.known:
		user.BuyerUID = cfg.KnownPrefix + strconv.Itoa(1+g.rng.IntN(cfg.KnownCount))
	case isApp && dev.ios && g.chance(0.3):
		// Limited ad tracking: the zero IFA.
		req.Device.IFA = "00000000-0000-0000-0000-000000000000"
		req.Device.Lmt = ptr[int8](1)
	case !isApp && g.chance(0.6):
		// Synced with the exchange, yet unknown to the bidder.
		user.BuyerUID = "anon-" + g.hex(16)
	}
	if gdpr {
		if g.chance(cfg.GDPRConsentShare) {
			user.Consent = g.consentYes
		} else {
			user.Consent = g.consentNo
		}
	}
	req.User = user

	// Imps: 1 (60 %), 2 (25 %) or 3 (15 %).
	nimp := 1
	if r := g.rng.Float64(); r >= 0.85 {
		nimp = 3
	} else if r >= 0.6 {
		nimp = 2
	}
	instl := isApp && g.chance(0.15)
	for k := 1; k <= nimp; k++ {
		imp := openrtb2.Imp{
			ID:     strconv.Itoa(k),
			TagID:  "slot-" + strconv.Itoa(k) + "-" + g.hex(6),
			Secure: ptr[int8](1),
		}
		spec := ImpSpec{ID: imp.ID}
		if g.chance(cfg.NativeShare) {
			imp.Native = &openrtb2.Native{Request: pick(g, g.natives), Ver: "1.2", API: []adcom1.APIFramework{adcom1.APIOMID10}}
			spec.Native = true
		} else {
			slot := pick(g, slots)
			if instl && k == 1 {
				slot = interstitialSlot
				imp.Instl = 1
			}
			b := &openrtb2.Banner{W: ptr(slot[0].w), H: ptr(slot[0].h), Pos: ptr(adcom1.PositionAboveFold)}
			for _, s := range slot {
				b.Format = append(b.Format, openrtb2.Format{W: s.w, H: s.h})
			}
			if k > 1 {
				b.Pos = ptr(adcom1.PositionBelowFold)
			}
			if isApp {
				b.API = []adcom1.APIFramework{adcom1.APIMRAID20, adcom1.APIMRAID30, adcom1.APIOMID10}
				imp.DisplayManager, imp.DisplayManagerVer = "GoogleMobileAds", "23.5.0"
			}
			imp.Banner = b
			spec.Banner = true
		}
		if g.chance(cfg.FloorShare) && cfg.FloorMedian > 0 {
			f := cfg.FloorMedian * math.Exp(0.7*g.rng.NormFloat64())
			f = math.Max(0.01, math.Round(f*100)/100)
			imp.BidFloor, imp.BidFloorCur = f, "USD"
			spec.Floor = f
		}
		req.Imp = append(req.Imp, imp)
		tpl.imps = append(tpl.imps, spec)
	}

	// Blocked categories and advertisers.
	bcat := g.rng.Perm(len(blockedCategories))[:3+g.rng.IntN(6)]
	for _, j := range bcat {
		req.BCat = append(req.BCat, blockedCategories[j])
	}
	for _, j := range g.rng.Perm(len(blockedAdvertisers))[:g.rng.IntN(3)] {
		req.BAdv = append(req.BAdv, blockedAdvertisers[j])
	}
	return req, tpl
}

// nativeRequest returns one of a few OpenRTB Native 1.2 requests, encoded as
// the string Native.request carries.
func nativeRequest(variant int) (string, error) {
	r := nativereq.Request{
		Ver:       "1.2",
		Context:   native1.ContextTypeContent,
		PlcmtType: native1.PlacementTypeFeed,
		PlcmtCnt:  1,
		Assets: []nativereq.Asset{
			{ID: 1, Required: 1, Title: &nativereq.Title{Len: 90}},
			{ID: 2, Required: 1, Img: &nativereq.Image{Type: native1.ImageAssetTypeMain, WMin: 300, HMin: 157}},
			{ID: 3, Img: &nativereq.Image{Type: native1.ImageAssetTypeIcon, W: 80, H: 80}},
			{ID: 4, Required: 1, Data: &nativereq.Data{Type: native1.DataAssetTypeSponsored, Len: 25}},
			{ID: 5, Data: &nativereq.Data{Type: native1.DataAssetTypeDesc, Len: 140}},
		},
		EventTrackers: []nativereq.EventTracker{{Event: native1.EventTypeImpression, Methods: []native1.EventTrackingMethod{native1.EventTrackingMethodImage}}},
		Privacy:       1,
	}
	switch variant {
	case 1:
		r.Context, r.PlcmtType = native1.ContextTypeProduct, native1.PlacementTypeRecommendationWidget
		r.Assets = append(r.Assets, nativereq.Asset{ID: 6, Data: &nativereq.Data{Type: native1.DataAssetTypePrice}},
			nativereq.Asset{ID: 7, Data: &nativereq.Data{Type: native1.DataAssetTypeSalePrice}})
	case 2:
		r.Context, r.PlcmtType = native1.ContextTypeSocial, native1.PlacementTypeAtomicContentUnit
		r.Assets = append(r.Assets, nativereq.Asset{ID: 6, Data: &nativereq.Data{Type: native1.DataAssetTypeCTAText, Len: 15}})
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("loadtest: encode native request: %w", err)
	}
	return string(b), nil
}
