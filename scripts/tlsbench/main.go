// Command tlsbench measures TLS routes for scripts/bench.sh (issue 23), in
// one run on this machine: TLS 1.3 full handshakes per second with an ECDSA
// P-256 and an RSA 2048 certificate, and one stream's MB/s, through a
// terminating relaytcp route, stunnel4 and HAProxy (ssl); and the
// connection rate of an sni= route (the ClientHello read, then relayed as
// it came) against a plain route, both before the same TLS server. It
// prints a Markdown table; each figure is the median of -rounds rounds.
//
//	go build -o /tmp/tlsbench ./scripts/tlsbench
//	/tmp/tlsbench -relaytcp /tmp/relaytcp -duration 5s -rounds 3
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var (
	relaytcp = flag.String("relaytcp", "relaytcp", "the relaytcp binary")
	duration = flag.Duration("duration", 5*time.Second, "each measurement's length")
	rounds   = flag.Int("rounds", 3, "rounds; figures are medians")
	conc     = flag.Int("conc", 16, "concurrent clients for the handshake and connection rates")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("tlsbench: ")
	dir, err := os.MkdirTemp("", "tlsbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b := &bench{dir: dir}
	defer b.stopAll()
	b.run()
}

// bench holds the run's files and processes.
type bench struct {
	dir   string
	procs []*exec.Cmd
	next  int
	pool  *x509.CertPool
	files map[string][2]string // by key type: certificate, key
}

func (b *bench) port() int {
	b.next++
	return 19400 + b.next
}

func (b *bench) stopAll() {
	for _, p := range b.procs {
		p.Process.Kill()
		p.Wait()
	}
}

// start runs a contender and waits until it listens on port.
func (b *bench) start(port int, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		log.Fatalf("start %s: %v", name, err)
	}
	b.procs = append(b.procs, cmd)
	for range 200 {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	log.Fatalf("%s does not listen on %d", name, port)
}

func (b *bench) write(name, text string) string {
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		log.Fatal(err)
	}
	return path
}

func (b *bench) run() {
	b.makeCerts()
	echo := serve(func(c net.Conn) { io.Copy(c, c) })
	sink := serve(func(c net.Conn) { io.Copy(io.Discard, c); c.Write([]byte{1}) })
	tlsEcho := serveTLS(b.files["ecdsa"])

	type front struct{ name, keyType, backend string }
	addrs := map[front]string{}
	for _, kt := range []string{"ecdsa", "rsa"} {
		cert, key := b.files[kt][0], b.files[kt][1]
		for _, backend := range []string{"echo", "sink"} {
			to := map[string]string{"echo": echo, "sink": sink}[backend]
			host, port, _ := net.SplitHostPort(to)
			p := b.port()
			b.start(p, *relaytcp, strconv.Itoa(p), host, port, "-tls", cert+","+key, "-q")
			addrs[front{"relaytcp", kt, backend}] = "127.0.0.1:" + strconv.Itoa(p)

			p = b.port()
			conf := b.write(fmt.Sprintf("stunnel-%s-%s.conf", kt, backend), fmt.Sprintf(
				"foreground = yes\npid =\n[b]\naccept = 127.0.0.1:%d\nconnect = %s\ncert = %s\nkey = %s\n", p, to, cert, key))
			b.start(p, "stunnel4", conf)
			addrs[front{"stunnel4", kt, backend}] = "127.0.0.1:" + strconv.Itoa(p)

			p = b.port()
			certData, _ := os.ReadFile(cert)
			keyData, _ := os.ReadFile(key)
			pemFile := b.write(fmt.Sprintf("haproxy-%s-%s.pem", kt, backend), string(certData)+string(keyData))
			conf = b.write(fmt.Sprintf("haproxy-%s-%s.cfg", kt, backend), fmt.Sprintf(
				"global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"+
					"frontend f\n  bind 127.0.0.1:%d ssl crt %s\n  default_backend b\nbackend b\n  server s %s\n", p, pemFile, to))
			b.start(p, "haproxy", "-db", "-f", conf)
			addrs[front{"haproxy", kt, backend}] = "127.0.0.1:" + strconv.Itoa(p)
		}
	}
	host, port, _ := net.SplitHostPort(tlsEcho)
	plainPort, sniPort := b.port(), b.port()
	b.start(plainPort, *relaytcp, strconv.Itoa(plainPort), host, port, "-q")
	b.start(sniPort, *relaytcp, strconv.Itoa(sniPort), host, port, "-sni", "bench.example.com", "-q")

	results := map[string][]float64{}
	add := func(k string, v float64) { results[k] = append(results[k], v) }
	for r := 1; r <= *rounds; r++ {
		log.Printf("round %d of %d", r, *rounds)
		for _, t := range []string{"relaytcp", "stunnel4", "haproxy"} {
			for _, kt := range []string{"ecdsa", "rsa"} {
				add(t+" hs "+kt, b.handshakes(addrs[front{t, kt, "echo"}], "bench.example.com"))
			}
			add(t+" bulk", b.bulk(addrs[front{t, "ecdsa", "sink"}]))
		}
		add("plain conn", b.handshakes("127.0.0.1:"+strconv.Itoa(plainPort), "bench.example.com"))
		add("sni conn", b.handshakes("127.0.0.1:"+strconv.Itoa(sniPort), "bench.example.com"))
	}
	med := func(k string) float64 {
		v := slices.Clone(results[k])
		slices.Sort(v)
		return v[len(v)/2]
	}
	ratio := func(a, b float64) string { return fmt.Sprintf("%.2f", a/b) }
	fmt.Printf("TLS 1.3, %d round(s) of %v, %d concurrent clients for handshakes (full handshakes, no resumption), medians; ratios in brackets to stunnel4, then HAProxy:\n\n", *rounds, *duration, *conc)
	fmt.Println("| target | handshakes/s ECDSA P-256 | handshakes/s RSA 2048 | 1 stream MB/s (through TLS) |")
	fmt.Println("|---|---:|---:|---:|")
	for _, t := range []string{"relaytcp", "stunnel4", "haproxy"} {
		row := "| " + t
		for _, k := range []string{"hs ecdsa", "hs rsa", "bulk"} {
			v := med(t + " " + k)
			row += fmt.Sprintf(" | %.0f", v)
			if t == "relaytcp" {
				row += fmt.Sprintf(" (%s, %s)", ratio(v, med("stunnel4 "+k)), ratio(v, med("haproxy "+k)))
			}
		}
		fmt.Println(row + " |")
	}
	fmt.Printf("\nSNI routing: TLS connections/s (handshake with the backend, 1-byte echo) through an sni= route and a plain route to the same TLS server: %.0f against %.0f (%s).\n",
		med("sni conn"), med("plain conn"), ratio(med("sni conn"), med("plain conn")))
}

// handshakes runs conc clients for the duration, each connection a full
// TLS 1.3 handshake and a 1-byte echo, and returns connections per second.
func (b *bench) handshakes(addr, name string) float64 {
	var n, failed atomic.Int64
	stop := time.Now().Add(*duration)
	var wg sync.WaitGroup
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &tls.Config{RootCAs: b.pool, ServerName: name, MinVersion: tls.VersionTLS13}
			buf := make([]byte, 1)
			for time.Now().Before(stop) {
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte{7}); err == nil {
					if _, err := io.ReadFull(c, buf); err == nil {
						n.Add(1)
					}
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		log.Printf("%s: %d connections failed", addr, f)
	}
	return float64(n.Load()) / duration.Seconds()
}

// bulk sends for the duration through one TLS connection to a sink and
// returns MB/s (10^6 bytes), counted when the sink has them all.
func (b *bench) bulk(addr string) float64 {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: b.pool, ServerName: "bench.example.com", MinVersion: tls.VersionTLS13})
	if err != nil {
		log.Fatalf("bulk %s: %v", addr, err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	var sent int64
	for time.Since(start) < *duration {
		n, err := c.Write(buf)
		sent += int64(n)
		if err != nil {
			log.Fatalf("bulk %s: %v", addr, err)
		}
	}
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		log.Fatalf("bulk %s: no acknowledgement: %v", addr, err)
	}
	return float64(sent) / 1e6 / time.Since(start).Seconds()
}

// serve runs a TCP server on a free loopback port and returns its address.
func serve(handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// serveTLS runs a TLS echo server with the pair files.
func serveTLS(files [2]string) string {
	cert, err := tls.LoadX509KeyPair(files[0], files[1])
	if err != nil {
		log.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return serve(func(c net.Conn) {
		tc := tls.Server(c, cfg)
		io.Copy(tc, tc)
	})
}

// makeCerts makes a CA and an ECDSA P-256 and an RSA 2048 certificate for
// bench.example.com.
func (b *bench) makeCerts() {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		log.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	b.pool = x509.NewCertPool()
	b.pool.AddCert(caCert)
	b.files = map[string][2]string{}
	for i, kt := range []string{"ecdsa", "rsa"} {
		var key crypto.Signer
		if kt == "rsa" {
			key, _ = rsa.GenerateKey(rand.Reader, 2048)
		} else {
			key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "bench.example.com"},
			DNSNames: []string{"bench.example.com"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
		if err != nil {
			log.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		cert := b.write(kt+".crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
		keyFile := b.write(kt+".key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
		b.files[kt] = [2]string{cert, keyFile}
	}
}
