package vpcemu

import (
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// action is one API call: parse checks the parameters (before faults and
// quota), run answers from the inventory.
type action struct {
	parse func(p url.Values) (any, *apiError)
	run   func(s *Server, account string, req any) (any, *apiError) // account "": the server's own
}

var actions = map[string]action{
	"DescribeVpnCrossAccountAuthorizations": {parseDescribeAuthorizations, runDescribeAuthorizations},
	"DescribeVpnConnections":                {parseDescribeConnections, runDescribeConnections},
	"DescribeRegions":                       {parseDescribeRegions, runDescribeRegions},
}

type responseMeta struct {
	RequestId string `json:"RequestId"`
}

func (m *responseMeta) setRequestID(id string) { m.RequestId = id }

func withRequestID(body any, id string) any {
	if b, ok := body.(interface{ setRequestID(string) }); ok {
		b.setRequestID(id)
	}
	return body
}

type page struct {
	number, size int
}

func parsePage(p url.Values) (page, *apiError) {
	pg := page{number: 1, size: 10}
	if v := p.Get("PageNumber"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > math.MaxInt32 {
			return pg, invalidParam("PageNumber")
		}
		pg.number = n
	}
	if v := p.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 50 {
			return pg, invalidParam("PageSize")
		}
		pg.size = n
	}
	return pg, nil
}

// bounds returns the slice [from, to) of a list of total items.
func (pg page) bounds(total int) (from, to int) {
	start := int64(pg.number-1) * int64(pg.size)
	if start >= int64(total) {
		return total, total
	}
	return int(start), min(int(start)+pg.size, total)
}

// --- DescribeVpnCrossAccountAuthorizations

type describeAuthorizationsRequest struct {
	region, connectionID string
	page                 page
}

type authorizationItem struct {
	VpnConnectionId string `json:"VpnConnectionId"`
	AliUid          int64  `json:"AliUid"`
	BindUid         int64  `json:"BindUid"`
	BindProduct     string `json:"BindProduct"`
	BindInstance    string `json:"BindInstance"`
	CreationTime    int64  `json:"CreationTime"`
}

// authorizationsBody carries a bare array, unlike the wrapped lists of the
// other Describe calls.
type authorizationsBody struct {
	CrossAccountAuthorizations []authorizationItem `json:"CrossAccountAuthorizations"`
	PageNumber                 int                 `json:"PageNumber"`
	PageSize                   int                 `json:"PageSize"`
	TotalCount                 int                 `json:"TotalCount"`
	responseMeta
}

func parseDescribeAuthorizations(p url.Values) (any, *apiError) {
	req := describeAuthorizationsRequest{region: p.Get("RegionId"), connectionID: p.Get("VpnConnectionId")}
	if req.region == "" {
		return nil, missingParam("RegionId")
	}
	if req.connectionID == "" {
		return nil, missingParam("VpnConnectionId")
	}
	pg, e := parsePage(p)
	req.page = pg
	return req, e
}

func runDescribeAuthorizations(s *Server, account string, r any) (any, *apiError) {
	req := r.(describeAuthorizationsRequest)
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	// Another account's connection is not found, as the real API answers
	// for an id the caller does not own.
	inv := s.inventoryLocked(account)
	c := inv.find(req.region, req.connectionID)
	if c == nil {
		return nil, newAPIError("InvalidVpnConnectionInstanceId.NotFound")
	}
	if c.Error != nil {
		return nil, faultError(*c.Error)
	}
	owner, _ := strconv.ParseInt(inv.AccountID, 10, 64)
	from, to := req.page.bounds(len(c.Authorizations))
	items := make([]authorizationItem, 0, to-from)
	for _, a := range c.Authorizations[from:to] {
		ali := a.AliUid
		if ali == 0 {
			ali = owner
		}
		items = append(items, authorizationItem{
			VpnConnectionId: c.VpnConnectionId,
			AliUid:          ali,
			BindUid:         a.BindUid,
			BindProduct:     a.BindProduct,
			BindInstance:    a.BindInstance,
			CreationTime:    a.CreationTime,
		})
	}
	return &authorizationsBody{
		CrossAccountAuthorizations: items,
		PageNumber:                 req.page.number,
		PageSize:                   req.page.size,
		TotalCount:                 len(c.Authorizations),
	}, nil
}

// --- DescribeVpnConnections

type describeConnectionsRequest struct {
	region                                   string
	connectionID, gatewayID, customerGateway string
	page                                     page
}

// defaultCreateTime is the CreateTime of connections that set none (2022-04-15).
const defaultCreateTime = 1650000000000

type connectionItem struct {
	VpnConnectionId        string      `json:"VpnConnectionId"`
	Name                   string      `json:"Name"`
	VpnGatewayId           string      `json:"VpnGatewayId"`
	CustomerGatewayId      string      `json:"CustomerGatewayId"`
	Status                 string      `json:"Status"`
	State                  string      `json:"State"`
	CreateTime             int64       `json:"CreateTime"`
	LocalSubnet            string      `json:"LocalSubnet"`
	RemoteSubnet           string      `json:"RemoteSubnet"`
	NetworkType            string      `json:"NetworkType"`
	AttachType             string      `json:"AttachType"`
	Spec                   string      `json:"Spec"`
	EffectImmediately      bool        `json:"EffectImmediately"`
	EnableDpd              bool        `json:"EnableDpd"`
	EnableNatTraversal     bool        `json:"EnableNatTraversal"`
	EnableTunnelsBgp       bool        `json:"EnableTunnelsBgp"`
	CrossAccountAuthorized bool        `json:"CrossAccountAuthorized"`
	IkeConfig              ikeConfig   `json:"IkeConfig"`
	IpsecConfig            ipsecConfig `json:"IpsecConfig"`
	Tag                    tagList     `json:"Tag"`
}

type ikeConfig struct {
	IkeAuthAlg  string `json:"IkeAuthAlg"`
	IkeEncAlg   string `json:"IkeEncAlg"`
	IkeLifetime int64  `json:"IkeLifetime"`
	IkeMode     string `json:"IkeMode"`
	IkePfs      string `json:"IkePfs"`
	IkeVersion  string `json:"IkeVersion"`
}

type ipsecConfig struct {
	IpsecAuthAlg  string `json:"IpsecAuthAlg"`
	IpsecEncAlg   string `json:"IpsecEncAlg"`
	IpsecLifetime int64  `json:"IpsecLifetime"`
	IpsecPfs      string `json:"IpsecPfs"`
}

type tagList struct {
	Tag []struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	} `json:"Tag"`
}

type connectionsBody struct {
	VpnConnections struct {
		VpnConnection []connectionItem `json:"VpnConnection"`
	} `json:"VpnConnections"`
	PageNumber int `json:"PageNumber"`
	PageSize   int `json:"PageSize"`
	TotalCount int `json:"TotalCount"`
	responseMeta
}

func parseDescribeConnections(p url.Values) (any, *apiError) {
	req := describeConnectionsRequest{
		region:          p.Get("RegionId"),
		connectionID:    p.Get("VpnConnectionId"),
		gatewayID:       p.Get("VpnGatewayId"),
		customerGateway: p.Get("CustomerGatewayId"),
	}
	if req.region == "" {
		return nil, missingParam("RegionId")
	}
	pg, e := parsePage(p)
	req.page = pg
	return req, e
}

// runDescribeConnections lists the region's connections; an unknown region
// lists none.
func runDescribeConnections(s *Server, account string, r any) (any, *apiError) {
	req := r.(describeConnectionsRequest)
	s.invMu.RLock()
	defer s.invMu.RUnlock()
	var matched []*Connection
	conns := s.inventoryLocked(account).Regions[req.region]
	for i := range conns {
		c := &conns[i]
		if (req.connectionID == "" || c.VpnConnectionId == req.connectionID) &&
			(req.gatewayID == "" || c.VpnGatewayId == req.gatewayID) &&
			(req.customerGateway == "" || customerGatewayOf(c) == req.customerGateway) {
			matched = append(matched, c)
		}
	}
	from, to := req.page.bounds(len(matched))
	body := &connectionsBody{PageNumber: req.page.number, PageSize: req.page.size, TotalCount: len(matched)}
	body.VpnConnections.VpnConnection = make([]connectionItem, 0, to-from)
	for _, c := range matched[from:to] {
		body.VpnConnections.VpnConnection = append(body.VpnConnections.VpnConnection, connectionItemOf(c))
	}
	return body, nil
}

func customerGatewayOf(c *Connection) string {
	if c.CustomerGatewayId != "" {
		return c.CustomerGatewayId
	}
	return "cgw-" + strings.TrimPrefix(c.VpnConnectionId, "vco-")
}

func connectionItemOf(c *Connection) connectionItem {
	item := connectionItem{
		VpnConnectionId:        c.VpnConnectionId,
		Name:                   c.Name,
		VpnGatewayId:           c.VpnGatewayId,
		CustomerGatewayId:      customerGatewayOf(c),
		Status:                 c.Status,
		State:                  "active",
		CreateTime:             c.CreateTime,
		LocalSubnet:            "0.0.0.0/0",
		RemoteSubnet:           "0.0.0.0/0",
		NetworkType:            "public",
		AttachType:             "CEN",
		Spec:                   "1000M",
		EnableDpd:              true,
		EnableNatTraversal:     true,
		CrossAccountAuthorized: len(c.Authorizations) > 0,
		IkeConfig: ikeConfig{IkeAuthAlg: "sha1", IkeEncAlg: "aes", IkeLifetime: 86400,
			IkeMode: "main", IkePfs: "group2", IkeVersion: "ikev1"},
		IpsecConfig: ipsecConfig{IpsecAuthAlg: "sha1", IpsecEncAlg: "aes", IpsecLifetime: 86400, IpsecPfs: "group2"},
	}
	if item.Name == "" {
		item.Name = c.VpnConnectionId
	}
	if item.Status == "" {
		item.Status = "ipsec_sa_established"
	}
	if item.CreateTime == 0 {
		item.CreateTime = defaultCreateTime
	}
	if c.VpnGatewayId != "" {
		item.AttachType = "NO_ASSOCIATED"
	}
	item.Tag.Tag = make([]struct {
		Key   string `json:"Key"`
		Value string `json:"Value"`
	}, 0)
	return item
}

// --- DescribeRegions

type describeRegionsRequest struct {
	english bool
}

type regionItem struct {
	RegionId       string `json:"RegionId"`
	LocalName      string `json:"LocalName"`
	RegionEndpoint string `json:"RegionEndpoint"`
}

type regionsBody struct {
	Regions struct {
		Region []regionItem `json:"Region"`
	} `json:"Regions"`
	responseMeta
}

// regionNames are the Chinese and English names of common regions.
var regionNames = map[string][2]string{
	"cn-qingdao":     {"华北1（青岛）", "China (Qingdao)"},
	"cn-beijing":     {"华北2（北京）", "China (Beijing)"},
	"cn-zhangjiakou": {"华北3（张家口）", "China (Zhangjiakou)"},
	"cn-huhehaote":   {"华北5（呼和浩特）", "China (Hohhot)"},
	"cn-wulanchabu":  {"华北6（乌兰察布）", "China (Ulanqab)"},
	"cn-hangzhou":    {"华东1（杭州）", "China (Hangzhou)"},
	"cn-shanghai":    {"华东2（上海）", "China (Shanghai)"},
	"cn-nanjing":     {"华东5（南京-本地地域）", "China (Nanjing - Local Region)"},
	"cn-shenzhen":    {"华南1（深圳）", "China (Shenzhen)"},
	"cn-heyuan":      {"华南2（河源）", "China (Heyuan)"},
	"cn-guangzhou":   {"华南3（广州）", "China (Guangzhou)"},
	"cn-chengdu":     {"西南1（成都）", "China (Chengdu)"},
	"cn-hongkong":    {"中国香港", "China (Hong Kong)"},
	"ap-southeast-1": {"新加坡", "Singapore"},
	"ap-southeast-3": {"马来西亚（吉隆坡）", "Malaysia (Kuala Lumpur)"},
	"ap-southeast-5": {"印度尼西亚（雅加达）", "Indonesia (Jakarta)"},
	"ap-northeast-1": {"日本（东京）", "Japan (Tokyo)"},
	"us-west-1":      {"美国（硅谷）", "US (Silicon Valley)"},
	"us-east-1":      {"美国（弗吉尼亚）", "US (Virginia)"},
	"eu-central-1":   {"德国（法兰克福）", "Germany (Frankfurt)"},
	"eu-west-1":      {"英国（伦敦）", "UK (London)"},
}

// centralEndpointRegions answer on the central endpoint, as the real listing says.
var centralEndpointRegions = map[string]bool{
	"cn-qingdao": true, "cn-beijing": true, "cn-hangzhou": true, "cn-shanghai": true,
	"cn-shenzhen": true, "cn-hongkong": true, "ap-southeast-1": true, "us-west-1": true, "us-east-1": true,
}

func parseDescribeRegions(p url.Values) (any, *apiError) {
	switch lang := p.Get("AcceptLanguage"); lang {
	case "", "zh-CN":
		return describeRegionsRequest{}, nil
	case "en-US":
		return describeRegionsRequest{english: true}, nil
	default:
		return nil, invalidParam("AcceptLanguage")
	}
}

func runDescribeRegions(s *Server, account string, r any) (any, *apiError) {
	req := r.(describeRegionsRequest)
	s.invMu.RLock()
	inv := s.inventoryLocked(account)
	ids := make([]string, 0, len(inv.Regions))
	for id := range inv.Regions {
		ids = append(ids, id)
	}
	s.invMu.RUnlock()
	sort.Strings(ids)
	body := &regionsBody{}
	body.Regions.Region = make([]regionItem, 0, len(ids))
	for _, id := range ids {
		name := id
		if names, ok := regionNames[id]; ok {
			name = names[0]
			if req.english {
				name = names[1]
			}
		}
		endpoint := "vpc." + id + ".aliyuncs.com"
		if centralEndpointRegions[id] {
			endpoint = hostID
		}
		body.Regions.Region = append(body.Regions.Region, regionItem{RegionId: id, LocalName: name, RegionEndpoint: endpoint})
	}
	return body, nil
}
