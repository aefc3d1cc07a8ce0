package licensor

import "strconv"

// DefaultMaxBatch is the default largest number of items in one batch.
const DefaultMaxBatch = 1000

// CheckBatchOrderIDs reports every draft whose order_id repeats one of an
// earlier draft in the same batch.
func CheckBatchOrderIDs(drafts []LicenseDraft) ItemErrors {
	var errs ItemErrors
	first := map[string]int{}
	for i, d := range drafts {
		if d.OrderID == nil {
			continue
		}
		if j, ok := first[*d.OrderID]; ok {
			errs = append(errs, ItemError{Index: i, Err: &Error{
				Code:    CodeDuplicateInBatch,
				Pointer: "/attributes/order_id",
				Detail:  "order_id " + strconv.Quote(*d.OrderID) + " is also used by item " + strconv.Itoa(j),
			}})
			continue
		}
		first[*d.OrderID] = i
	}
	return errs
}

// CheckBatchIDs reports every id that repeats an earlier one.
func CheckBatchIDs(ids []int64) ItemErrors {
	var errs ItemErrors
	first := map[int64]int{}
	for i, id := range ids {
		if j, ok := first[id]; ok {
			errs = append(errs, ItemError{Index: i, Err: &Error{
				Code:    CodeDuplicateInBatch,
				Pointer: "/id",
				Detail:  "license " + strconv.FormatInt(id, 10) + " is also listed at item " + strconv.Itoa(j),
			}})
			continue
		}
		first[id] = i
	}
	return errs
}
