// Package storetest is the conformance suite of licensor.Store. Every
// storage engine runs it against a real database (internal/sqlite always,
// internal/postgres when LICENSOR_POSTGRES_URL is set), so that the engines
// behave the same down to error codes, sort orders and page boundaries.
//
// The spec is the doc comments of the licensor package and CONTRACT.md. List
// queries are checked against a model in plain Go (model.go) that restates
// their rules: which rows a filter selects, in which order, with which
// effective status.
package storetest

import (
	"testing"

	"github.com/licensor/licensor"
)

// test is one behaviour, run against a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s licensor.Store)
}

// Run runs every storage behaviour against stores made by open. Each subtest
// calls open(t) for a fresh, empty, migrated store; open registers its own
// cleanup with t. Subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) licensor.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Ping", []test{
			{"Answers", testPing},
		}},
		{"CreateProduct", []test{
			{"SetsIDTimesVersion", testCreateProductSetsIDTimesVersion},
			{"RoundTrip", testCreateProductRoundTrip},
		}},
		{"FindProductByID", []test{
			{"NotFound", testFindProductByIDNotFound},
		}},
		{"FindProducts", []test{
			{"Empty", testFindProductsEmpty},
			{"Filters", testFindProductsFilters},
			{"TitleFilter", testFindProductsTitleFilter},
			{"Sort", testFindProductsSort},
			{"KeysetWalk", testFindProductsKeysetWalk},
			{"Count", testFindProductsCount},
		}},
		{"UpdateProduct", []test{
			{"Partial", testUpdateProductPartial},
			{"AllFields", testUpdateProductAllFields},
			{"ClearPriceAndPeriod", testUpdateProductClear},
			{"Channels", testUpdateProductChannels},
			{"IfMatch", testUpdateProductIfMatch},
			{"Invalid", testUpdateProductInvalid},
			{"NotFound", testUpdateProductNotFound},
			{"KeepsLicenseSnapshot", testUpdateProductKeepsLicenses},
			{"ConcurrentIfMatch", testUpdateProductConcurrentIfMatch},
		}},
		{"DeleteProduct", []test{
			{"Deletes", testDeleteProduct},
			{"NotFound", testDeleteProductNotFound},
			{"InUse", testDeleteProductInUse},
			{"OnlyDeletedLicenses", testDeleteProductOnlyDeletedLicenses},
			{"Cascade", testDeleteProductCascade},
			{"IfMatch", testDeleteProductIfMatch},
		}},
		{"CreateLicenses", []test{
			{"Defaults", testCreateLicensesDefaults},
			{"CalendarPeriod", testCreateLicensesCalendarPeriod},
			{"ExplicitValues", testCreateLicensesExplicit},
			{"StartWithoutStop", testCreateLicensesStartWithoutStop},
			{"StopNotAfterStart", testCreateLicensesStopNotAfterStart},
			{"UnknownProduct", testCreateLicensesUnknownProduct},
			{"DeletedProduct", testCreateLicensesDeletedProduct},
			{"OrderIDConflict", testCreateLicensesOrderIDConflict},
			{"OrderIDReusableAfterDelete", testCreateLicensesOrderIDReusable},
			{"BatchOrder", testCreateLicensesBatchOrder},
			{"BatchAtomic", testCreateLicensesBatchAtomic},
			{"DuplicateInBatch", testCreateLicensesDuplicateInBatch},
			{"MaxBatch", testCreateLicensesMaxBatch},
			{"ConcurrentOrderID", testCreateLicensesConcurrentOrderID},
			{"RaceWithProductDelete", testCreateLicensesRaceWithProductDelete},
			{"PoisonIsolated", testCreateLicensesPoisonIsolated},
		}},
		{"FindLicenseByID", []test{
			{"NotFound", testFindLicenseByIDNotFound},
		}},
		{"FindLicenses", []test{
			{"Empty", testFindLicensesEmpty},
			{"Filters", testFindLicensesFilters},
			{"Ranges", testFindLicensesRanges},
			{"NullNeverInRange", testFindLicensesNullNeverInRange},
			{"EffectiveStatus", testFindLicensesEffectiveStatus},
			{"Sort", testFindLicensesSort},
			{"NullStopDateSortsLast", testFindLicensesNullStopDateSortsLast},
			{"KeysetWalk", testFindLicensesKeysetWalk},
			{"Count", testFindLicensesCount},
		}},
		{"FindGrants", []test{
			{"ActiveLiveOnly", testFindGrants},
			{"ListInUserOrder", testListGrants},
			{"OfManyUsers", testFindUsersGrants},
			{"HotUsers", testHotUsers},
		}},
		{"DeleteLicenses", []test{
			{"Deletes", testDeleteLicenses},
			{"UnknownID", testDeleteLicensesUnknown},
			{"AllowMissing", testDeleteLicensesAllowMissing},
			{"DuplicateIDs", testDeleteLicensesDuplicates},
			{"Twice", testDeleteLicensesTwice},
			{"Concurrent", testDeleteLicensesConcurrent},
		}},
		{"APIKeys", []test{
			{"CreateAndFind", testAPIKeyCreateAndFind},
			{"DuplicateName", testAPIKeyDuplicateName},
			{"UnknownPrefix", testAPIKeyUnknownPrefix},
			{"List", testAPIKeyList},
			{"RevokeByName", testAPIKeyRevokeByName},
			{"RevokeByPrefix", testAPIKeyRevokeByPrefix},
			{"RevokeUnknown", testAPIKeyRevokeUnknown},
			{"RevokeTwice", testAPIKeyRevokeTwice},
			{"Rotate", testAPIKeyRotate},
			{"Touch", testAPIKeyTouch},
		}},
		{"ConsoleSessions", []test{
			{"RoundTrip", testConsoleSessionRoundTrip},
			{"Touch", testConsoleSessionTouch},
			{"DeleteAndPrune", testConsoleSessionDeleteAndPrune},
		}},
		{"Events", []test{
			{"EveryWrite", testEventsEveryWrite},
			{"FailedWrites", testEventsFailedWrites},
			{"Filters", testEventsFilters},
			{"Next", testEventsNext},
			{"ConcurrentWriters", testEventsConcurrentWriters},
			{"Pruned", testEventsPruned},
		}},
		{"ExpireLicenses", []test{
			{"Expires", testExpireLicenses},
			{"Backlog", testExpireLicensesBacklog},
			{"Concurrent", testExpireLicensesConcurrent},
		}},
		{"SuspendLicenses", []test{
			{"SuspendReinstate", testSuspendReinstate},
			{"Admin", testSuspendAdmin},
			{"Refused", testSuspendRefused},
			{"User", testSuspendUser},
			{"Concurrent", testSuspendConcurrent},
		}},
		{"BulkJobs", []test{
			{"CreateFind", testBulkCreateFind},
			{"Delete", testBulkDelete},
			{"SuspendReinstate", testBulkSuspend},
			{"Lease", testBulkLease},
			{"Cancel", testBulkCancel},
			{"Concurrent", testBulkConcurrent},
			{"Idempotency", testBulkIdempotency},
			{"Prune", testBulkPrune},
		}},
		{"Renewal", []test{
			{"Automatic", testRenewAutomatic},
			{"Backlog", testRenewBacklog},
			{"Notify", testRenewNotify},
			{"SuccessorRefused", testRenewSuccessorRefused},
			{"Cancel", testRenewCancel},
			{"Lapse", testRenewLapse},
			{"ModeOverride", testRenewModeOverride},
			{"Concurrent", testRenewConcurrent},
		}},
		{"Idempotency", []test{
			{"ClaimReplayTakeOver", testIdempotency},
		}},
		{"Webhooks", []test{
			{"CRUD", testWebhookCRUD},
			{"Dispatch", testWebhookDispatch},
			{"Order", testWebhookOrder},
			{"ClaimPerWebhook", testWebhookClaimPerWebhook},
			{"Lease", testWebhookLease},
			{"Redeliver", testWebhookRedeliver},
			{"ConcurrentDispatch", testWebhookConcurrentDispatch},
			{"Prune", testWebhookPrune},
			{"Pause", testWebhookPause},
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, open(t))
				})
			}
		})
	}
}

func testPing(t *testing.T, s licensor.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: got %v, want nil", err)
	}
}
