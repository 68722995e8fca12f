// Package health is the admin HTTP server: /healthz, /readyz, /metrics,
// /rules, /instances, /deadletters, POST /explain, and the live status page
// at GET / (embedded assets that poll those endpoints). It reports state
// through the functions it is given and never makes routing decisions.
package health
