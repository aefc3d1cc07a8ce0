package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// The reference HTTP server: the ceiling of what net/http can answer on
// this machine, measured with the same generator as licensor. It runs as a
// separate process, like licensor, with the same http.Server settings as
// licensor serve's defaults, and answers every request with a document
// of the shape and size of a GetLicenseById response, marshalled afresh
// each time: the ratio to it is then what licensor adds on top of HTTP and
// JSON (authentication, middleware, access log, metrics, the database).

type refIdentifier struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type refLicense struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Attributes struct {
		Status      string  `json:"status"`
		StartDate   int64   `json:"start_date"`
		StopDate    *int64  `json:"stop_date"`
		OrderID     *string `json:"order_id"`
		RenewRecord struct {
			Recurring  bool   `json:"recurring"`
			ExpiryDate *int64 `json:"expiry_date"`
		} `json:"renew_record"`
		PurchaseRecord struct {
			PriceAmount       *int64  `json:"price_currency_amount"`
			PriceCurrency     *string `json:"price_currency_iso4217"`
			PurchaseTimestamp int64   `json:"purchase_timestamp"`
			PaymentMethod     *string `json:"payment_method"`
		} `json:"purchase_record"`
		CreatedAt int64 `json:"created_at"`
	} `json:"attributes"`
	Relationships struct {
		User struct {
			Data refIdentifier `json:"data"`
		} `json:"user"`
		Product struct {
			Data refIdentifier `json:"data"`
		} `json:"product"`
	} `json:"relationships"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

// refHandler answers GET /ref/{id} with a license-shaped JSON document and
// GET /healthz with 200; with a database, also the same-work references
// (see sameWork).
func refHandler(sw *sameWork) http.Handler {
	mux := http.NewServeMux()
	if sw != nil {
		mux.HandleFunc("GET /ref/license/{id}", sw.license)
		mux.HandleFunc("GET /ref/licenses", sw.list)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /ref/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		stop, order, price, cur, pm := int64(1769904000), "o1234567890-"+id, int64(999), "EUR", "credit_card"
		var doc struct {
			Data refLicense `json:"data"`
		}
		l := &doc.Data
		l.ID, l.Type = id, "License"
		l.Attributes.Status = "ACTIVE"
		l.Attributes.StartDate = 1767225600
		l.Attributes.StopDate = &stop
		l.Attributes.OrderID = &order
		l.Attributes.RenewRecord.Recurring = true
		l.Attributes.RenewRecord.ExpiryDate = &stop
		l.Attributes.PurchaseRecord.PriceAmount = &price
		l.Attributes.PurchaseRecord.PriceCurrency = &cur
		l.Attributes.PurchaseRecord.PurchaseTimestamp = 1767225600
		l.Attributes.PurchaseRecord.PaymentMethod = &pm
		l.Attributes.CreatedAt = 1767225600
		l.Relationships.User.Data = refIdentifier{"User", "41"}
		l.Relationships.Product.Data = refIdentifier{"Product", "7"}
		l.Links.Self = "/api/license/management/v4/licenses/" + id
		b, err := json.Marshal(&doc)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.api+json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	})
	return mux
}

// runRefServer is the hidden "refserver" subcommand.
func runRefServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("licensorbench refserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	kind := fs.String("engine", "", "sqlite or postgres: serve the same-work references from --db")
	dsn := fs.String("db", "", "the database of the same-work references (licensor's --db)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	var sw *sameWork
	if *kind != "" {
		var err error
		if sw, err = openSameWork(ctx, *kind, *dsn); err != nil {
			return fmt.Errorf("refserver: %w", err)
		}
		defer sw.close()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("refserver: %w", err)
	}
	// The timeouts of licensor serve's defaults.
	hs := &http.Server{
		Handler:           refHandler(sw),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("refserver: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("refserver: shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("refserver: %w", err)
	}
	return nil
}
