package licensor

import "strings"

// iso4217 lists the active ISO 4217 currency codes, grouped by the number of
// minor digits (decimal places of the minor unit). Funds and precious-metal
// codes without a minor unit are not currencies a product is priced in and
// are left out.
var iso4217 = map[int]string{
	0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
	2: "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN " +
		"BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP " +
		"GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT " +
		"LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO " +
		"NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS " +
		"SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD " +
		"XCG YER ZAR ZMW ZWG ZWL",
	3: "BHD IQD JOD KWD LYD OMR TND",
	4: "CLF UYW",
}

var currencyDigits = func() map[string]int {
	m := map[string]int{}
	for digits, codes := range iso4217 {
		for _, c := range strings.Fields(codes) {
			m[c] = digits
		}
	}
	return m
}()

// ValidCurrency reports whether code is an active ISO 4217 currency code.
func ValidCurrency(code string) bool {
	_, ok := currencyDigits[code]
	return ok
}

// CurrencyDigits returns the number of minor digits of an ISO 4217 currency
// (2 for EUR, 0 for JPY, 3 for BHD) and whether the code is known.
func CurrencyDigits(code string) (int, bool) {
	d, ok := currencyDigits[code]
	return d, ok
}
