package loadtest

import "github.com/prebid/openrtb/v20/adcom1"

// The fixed catalogue the generator draws from: publishers, devices,
// countries. Names are made up; shapes follow what exchanges send.

type siteInfo struct {
	domain, name, pubID, pubName string
	cat                          []string
	paths                        []string
}

var sites = []siteInfo{
	{"news.seoul-daily.kr", "Seoul Daily", "pub-1001", "Seoul Daily Media", []string{"IAB12"}, []string{"/politics/2026/11/23/article-8812", "/economy/markets/kospi-closes-higher", "/world/asia/summit-wrap"}},
	{"shop-talk.co.kr", "Shop Talk", "pub-1002", "Shop Talk Inc", []string{"IAB22", "IAB18"}, []string{"/reviews/sneakers-2026", "/deals/black-friday", "/fashion/winter-coats"}},
	{"www.gamebeat-news.com", "GameBeat", "pub-1003", "GameBeat LLC", []string{"IAB9-30"}, []string{"/reviews/rpg-of-the-year", "/news/console-sales", "/guides/boss-walkthrough"}},
	{"recipes.homecook-hub.com", "HomeCook Hub", "pub-1004", "HomeCook", []string{"IAB8"}, []string{"/kimchi-jjigae", "/30-minute-dinners", "/baking/sourdough"}},
	{"sports.arena-live.com", "Arena Live", "pub-1005", "Arena Live Media", []string{"IAB17"}, []string{"/baseball/kbo/standings", "/football/epl/matchday-13", "/esports/finals"}},
	{"tech.bytes-weekly.com", "Bytes Weekly", "pub-1006", "Bytes Media", []string{"IAB19"}, []string{"/phones/flagship-review", "/laptops/best-of-2026", "/ai/chips"}},
}

type appInfo struct {
	bundle, name, pubID, pubName, store string
	cat                                 []string
	ios                                 bool
}

var apps = []appInfo{
	{"kr.co.puzzlemate.blocks", "Block Puzzle Mate", "pub-2001", "PuzzleMate", "https://play.google.com/store/apps/details?id=kr.co.puzzlemate.blocks", []string{"IAB9-30"}, false},
	{"com.dailyweather.radar", "Daily Weather Radar", "pub-2002", "DailyWeather", "https://play.google.com/store/apps/details?id=com.dailyweather.radar", []string{"IAB15-10"}, false},
	{"1598765432", "Webtoon Reader Plus", "pub-2003", "Toonverse", "https://apps.apple.com/app/id1598765432", []string{"IAB1-1"}, true},
	{"com.runtrack.fitness", "RunTrack", "pub-2004", "RunTrack Labs", "https://play.google.com/store/apps/details?id=com.runtrack.fitness", []string{"IAB7-44", "IAB17"}, false},
	{"1623456789", "Market Deals", "pub-2005", "Deal Inc", "https://apps.apple.com/app/id1623456789", []string{"IAB22"}, true},
}

type deviceInfo struct {
	ua, make, model, os, osv string
	devType                  adcom1.DeviceType
	w, h                     int64
	ratio                    float64
	ios                      bool
}

var siteDevices = []deviceInfo{
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "", "", "Windows", "10", adcom1.DevicePC, 1920, 1080, 1, false},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Apple", "Macintosh", "macOS", "15.1", adcom1.DevicePC, 1512, 982, 2, true},
	{"Mozilla/5.0 (Linux; Android 14; SM-S928N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", "Samsung", "SM-S928N", "Android", "14", adcom1.DevicePhone, 412, 915, 3.5, false},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Apple", "iPhone", "iOS", "18.1", adcom1.DevicePhone, 393, 852, 3, true},
}

var appDevices = []deviceInfo{
	{"Mozilla/5.0 (Linux; Android 14; SM-A556N Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.6723.107 Mobile Safari/537.36", "Samsung", "SM-A556N", "Android", "14", adcom1.DevicePhone, 384, 832, 2.8125, false},
	{"Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A.230901.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/129.0.6668.100 Mobile Safari/537.36", "Google", "Pixel 7", "Android", "13", adcom1.DevicePhone, 412, 915, 2.625, false},
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "Apple", "iPhone15,2", "iOS", "17.6", adcom1.DevicePhone, 393, 852, 3, true},
	{"Mozilla/5.0 (iPad; CPU OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "Apple", "iPad13,18", "iOS", "18.0", adcom1.DeviceTablet, 820, 1180, 2, true},
}

type placeInfo struct {
	country, region, city, lang string
	lat, lon                    float64
	utcOffset                   int64
	ipPrefix                    string // documentation ranges only
}

// euPlaces are where GDPR requests come from; otherPlaces the rest. Korea is
// weighted up by appearing more than once.
var euPlaces = []placeInfo{
	{"DEU", "BE", "Berlin", "de", 52.52, 13.40, 60, "198.51.100."},
	{"FRA", "IDF", "Paris", "fr", 48.86, 2.35, 60, "198.51.100."},
	{"NLD", "NH", "Amsterdam", "nl", 52.37, 4.90, 60, "198.51.100."},
	{"ESP", "MD", "Madrid", "es", 40.42, -3.70, 60, "198.51.100."},
	{"ITA", "25", "Milan", "it", 45.46, 9.19, 60, "198.51.100."},
}

var usPlaces = []placeInfo{
	{"USA", "CA", "San Francisco", "en", 37.77, -122.42, -480, "192.0.2."},
	{"USA", "NY", "New York", "en", 40.71, -74.01, -300, "192.0.2."},
}

var otherPlaces = []placeInfo{
	{"KOR", "11", "Seoul", "ko", 37.57, 126.98, 540, "203.0.113."},
	{"KOR", "11", "Seoul", "ko", 37.50, 127.03, 540, "203.0.113."},
	{"KOR", "26", "Busan", "ko", 35.18, 129.08, 540, "203.0.113."},
	{"KOR", "41", "Suwon", "ko", 37.26, 127.03, 540, "203.0.113."},
	{"JPN", "13", "Tokyo", "ja", 35.68, 139.69, 540, "203.0.113."},
	{"GBR", "ENG", "London", "en", 51.51, -0.13, 0, "198.51.100."},
	{"AUS", "NSW", "Sydney", "en", -33.87, 151.21, 660, "192.0.2."},
}

type size struct{ w, h int64 }

// Banner slots: the first size is the primary one (banner.w/h), the rest go
// into banner.format with it.
var siteSlots = [][]size{
	{{300, 250}},
	{{300, 250}, {300, 600}},
	{{728, 90}},
	{{160, 600}, {300, 600}},
	{{300, 600}},
}

var mobileSlots = [][]size{
	{{320, 50}},
	{{300, 250}},
	{{320, 50}, {300, 250}},
}

var interstitialSlot = []size{{320, 480}}

var blockedCategories = []string{"IAB7-39", "IAB8-18", "IAB8-5", "IAB9-9", "IAB14-1", "IAB23", "IAB25", "IAB26", "IAB11-4", "IAB3-7"}

var blockedAdvertisers = []string{"rival-shop.example", "casino-royale.example", "quickloans.example", "miracle-pills.example"}
