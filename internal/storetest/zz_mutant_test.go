package storetest_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlite"
	"github.com/licensor/licensor/internal/storetest"
)

type mut struct {
	licensor.Store
	kind string
}

func (m mut) FindLicenses(ctx context.Context, q licensor.LicenseQuery) (*licensor.LicensePage, error) {
	switch m.kind {
	case "nowminus1":
		q.Now--
	case "nowplus1":
		q.Now++
	}
	p, err := m.Store.FindLicenses(ctx, q)
	if err != nil {
		return p, err
	}
	switch m.kind {
	case "stored":
		for i := range p.Licenses {
			l, _ := m.Store.FindLicenseByID(ctx, p.Licenses[i].ID)
			p.Licenses[i].Status = l.Status
		}
	case "pagetotal":
		if p.Total != nil {
			n := int64(len(p.Licenses))
			p.Total = &n
		}
	case "dropnext":
		if p.Next != nil && len(p.Licenses) > 0 {
			p.Next = nil
		}
	case "cursorid":
		if p.Next != nil {
			p.Next.ID--
		}
	}
	return p, err
}

func (m mut) FindProductByID(ctx context.Context, id int64) (*licensor.Product, error) {
	p, err := m.Store.FindProductByID(ctx, id)
	if err == nil && m.kind == "sortch" {
		for s := range p.Channels {
			slices.Sort(p.Channels[s])
		}
	}
	return p, err
}

func (m mut) UpdateProduct(ctx context.Context, id int64, patch licensor.ProductPatch, ifMatch string, c licensor.Change) (*licensor.Product, error) {
	if m.kind == "noifmatch" {
		ifMatch = ""
	}
	if m.kind == "noupdtime" {
		c.Time = 0
	}
	return m.Store.UpdateProduct(ctx, id, patch, ifMatch, c)
}

func (m mut) CreateLicenses(ctx context.Context, d []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	ls, err := m.Store.CreateLicenses(ctx, d, c)
	if m.kind == "nometa" {
		var items licensor.ItemErrors
		if errors.As(err, &items) {
			for _, it := range items {
				it.Err.Meta = nil
			}
		}
	}
	if m.kind == "firstonly" {
		var items licensor.ItemErrors
		if errors.As(err, &items) && len(items) > 1 {
			err = items[:1]
		}
	}
	return ls, err
}

func (m mut) TouchAPIKeys(ctx context.Context, lastUsed map[int64]int64) error {
	if m.kind == "touchnop" {
		return nil
	}
	return m.Store.TouchAPIKeys(ctx, lastUsed)
}

func TestMutant(t *testing.T) {
	for _, kind := range []string{"none", "nowminus1", "nowplus1", "stored", "pagetotal", "dropnext", "cursorid", "sortch", "noifmatch", "noupdtime", "nometa", "firstonly", "touchnop"} {
		t.Run(kind, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) licensor.Store {
				db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				if err := db.Migrate(t.Context()); err != nil {
					t.Fatal(err)
				}
				return mut{db, kind}
			})
		})
	}
}
