package coordinator

import (
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/passkey"
)

func (s *Server) routes() http.Handler {
	quietGin()
	r := gin.New()
	r.Use(s.accessLog, gin.Recovery(), securityHeaders, s.inFlightPerClient())
	r.HandleMethodNotAllowed = true

	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/ui/") }) // signs in first when needed
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/readyz", s.ready)
	r.GET("/metrics", s.adminAuth, gin.WrapH(s.MetricsHandler())) // or unauthenticated on --metrics-listen
	r.GET("/static/login.css", serveLoginCSS)
	r.GET("/static/passkey.js", gin.WrapF(passkey.ServeScript))
	s.installRoutes(r) // GET /install.sh, /install.sh.minisig, /download/{file}

	logins := s.signInLimit() // sign-in starts, pages and codes
	browser := r.Group("/", logins)
	browser.GET("/login/:id", s.confirmLogin)
	browser.POST("/login/:id", s.beginLogin)
	browser.GET("/oidc/callback", s.callback)
	browser.GET("/login/:id/mfa", s.mfaPage)
	browser.POST("/login/:id/mfa", s.mfaSubmit)
	browser.POST("/login/:id/passkey", s.mfaPasskey)
	r.Any("/ui/*path", s.uiRoutes(logins))

	api := r.Group("/api/v1")
	api.POST("/login", s.memberVersion, logins, s.startLogin)
	api.POST("/login/poll", s.memberVersion, s.pollsPerLogin(), s.pollLogin)
	api.POST("/enroll", s.memberVersion, s.perClient(newRateTable(time.Second, 10)), s.enroll)
	dev := api.Group("/", s.memberVersion, s.deviceAuth)
	dev.GET("/netmap", s.endOnDrain, s.netmapStream)
	dev.POST("/tailnet", s.endOnDrain, s.tailnetStream)
	dev.POST("/node", s.advertise)
	dev.POST("/endpoints", s.reportEndpoints)
	dev.POST("/paths", s.reportPaths)
	dev.POST("/logout", s.logout)
	dev.POST("/audit", s.ingestAudit)
	dev.POST("/node/lease", s.lease)
	dev.POST("/node/credential", s.renewNodeCredential)
	dev.GET("/usage", s.myUsage)
	s.adminRoutes(api.Group("/admin"))

	if err := s.scimRoutes(r); err != nil {
		panic(err) // the SCIM schemas are fixed: this is a programming error
	}
	if s.auth.idp != nil {
		r.Any("/idp/*path", s.idpFormLimit(), gin.WrapH(s.auth.idp))
	}
	return r
}

// ready answers 200 when the store answers: a replica can serve. The
// IdP's health is reported apart (idphealth.go), so that an IdP outage
// does not take every replica out of the load balancer.
func (s *Server) ready(c *gin.Context) {
	if err := s.store.Ping(c.Request.Context()); err != nil {
		s.log.Warn("not ready", "err", err)
		c.String(http.StatusServiceUnavailable, "store not reachable\n")
		return
	}
	c.String(http.StatusOK, "ready\n")
}

// quietGin puts gin in release mode unless GIN_MODE says otherwise: in
// its default debug mode gin prints every route and a warning. The mode
// is process-wide, so it is set when a router is built, not on import.
func quietGin() {
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode)
	}
}
