"use strict";
// Starts the vendored Swagger UI on /docs without inline code (CSP 'self').
window.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("swagger-container");
  window.ui = SwaggerUIBundle({
    url: box.dataset.schemaUrl,
    domNode: box,
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
});
