// A Product's attribute `type` (CHANNEL_GROUP, SVOD, ...) comes from Amino's
// documented shape, so it stays. Generic JSON:API clients flatten attributes
// into the resource object, and then that attribute overwrites the resource
// type ("Product"). The fix for integrators: call it product_type on the
// client side and rename it at the wire, in both directions.
//
//   LICENSOR_URL=http://localhost:8080 LICENSOR_KEY=lk_... node product-type.mjs
//
// .ci/api-ecosystem runs this against a real server and fails on any
// mismatch.
import assert from 'node:assert/strict'
import Kitsu from 'kitsu'
import JsonApi from 'devour-client'

const base = `${process.env.LICENSOR_URL}/api/license/management/v4`
const key = process.env.LICENSOR_KEY

// toClient renames a Product's attributes.type to product_type in a response
// document; toServer renames it back in a request document.
const toClient = doc => {
  for (const r of [].concat(doc?.data ?? [], doc?.included ?? [])) {
    if (r?.type === 'Product' && r.attributes && 'type' in r.attributes) {
      r.attributes.product_type = r.attributes.type
      delete r.attributes.type
    }
  }
  return doc
}
const toServer = doc => {
  for (const r of [].concat(doc?.data ?? [])) {
    if (r?.attributes && 'product_type' in r.attributes) {
      r.attributes.type = r.attributes.product_type
      delete r.attributes.product_type
    }
  }
  return doc
}

// kitsu 11: axios interceptors around its (de)serialisation. kitsu takes the
// resource type from the path ('products'); the server's type is 'Product'.
const kitsu = new Kitsu({ baseURL: base, pluralize: false, resourceCase: 'none', headers: { Authorization: `Apikey ${key}` } })
kitsu.interceptors.request.use(config => {
  if (config.data?.data) {
    toServer(config.data)
    for (const r of [].concat(config.data.data)) if (r.type === 'products') r.type = 'Product'
  }
  return config
})
kitsu.interceptors.response.use(res => { toClient(res.data); return res })

const created = await kitsu.post('products', { title: 'Movies', product_type: 'TVOD' })

// The problem, with kitsu as it comes: the resource type reads "TVOD" (and
// its own POST of { type: 'products' } would get 409 RESOURCE_MISMATCH).
const plain = new Kitsu({ baseURL: base, pluralize: false, resourceCase: 'none', headers: { Authorization: `Apikey ${key}` } })
const naive = await plain.get(`products/${created.data.id}`)
assert.equal(naive.data.type, 'TVOD', 'kitsu without the fix')

const got = await kitsu.get(`products/${created.data.id}`)
assert.equal(got.data.type, 'Product')
assert.equal(got.data.product_type, 'TVOD')
await kitsu.patch('products', { id: got.data.id, product_type: 'SVOD' })
const list = await kitsu.get('products', { params: { 'filter[type]': 'SVOD' } })
assert.ok(list.data.some(p => p.id === got.data.id && p.type === 'Product' && p.product_type === 'SVOD'), 'kitsu: the patched product in the list')

// devour 3: a middleware before its deserialiser and one before the request.
const devour = new JsonApi({ apiUrl: base, pluralize: false, logger: false })
devour.headers.Authorization = `Apikey ${key}`
devour.define('Product', { title: '', description: '', product_type: '', is_premium: false, is_buyable: true, is_visible: true }, { collectionPath: 'products' })
devour.insertMiddlewareBefore('response', { name: 'product-type-in', res: payload => { toClient(payload.res.data); return payload } })
devour.insertMiddlewareBefore('axios-request', { name: 'product-type-out', req: payload => { toServer(payload.req.data); return payload } })

const made = await devour.create('Product', { title: 'Kids', product_type: 'SERIES' })
const found = await devour.find('Product', made.data.id)
assert.equal(found.data.type, 'Product')
assert.equal(found.data.product_type, 'SERIES')

for (const id of [got.data.id, found.data.id]) await kitsu.delete('products', id)
console.log('kitsu 11 and devour 3: Product type and product_type both right')
