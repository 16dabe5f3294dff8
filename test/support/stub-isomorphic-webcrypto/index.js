'use strict';
// fhirclient is used in tests only through its prebuilt browser bundle (build/fhir-client.js),
// which runs in Chromium with the browser's own WebCrypto. Node never loads this.
module.exports = globalThis.crypto;
