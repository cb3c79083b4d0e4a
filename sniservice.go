package main

// The service's part in ports shared by sni= (sniroute.go): a reload that
// makes a running route's port shared, or no longer shared, restarts it,
// since a shared port has one listener for all its routes.

// restartSNIChanges retires the running routes whose port became shared
// by sni= in cfg or stopped being: apply then starts them again, after the
// routes that left, in cfg's order. s.mu is held.
func (s *service) restartSNIChanges(cfg *Config) {
	for local, r := range s.routes {
		if s.relay.sharedBySNI(s.ids[local]) != sharesPortBySNI(cfg.Routes, r) {
			s.relay.Retire(s.ids[local])
			delete(s.routes, local)
			delete(s.partial, local)
		}
	}
}
