// The console's progressive enhancement: GOV.UK Frontend's components, then the
// template editor's live preview (templates work without this: the Preview button).
import { initAll } from './build/govuk-frontend.min.js'

initAll()

const editor = document.querySelector('[data-hysbys-preview]')
if (editor) {
  const form = editor.closest('form')
  const target = document.getElementById('preview')
  let timer = null
  let latest = 0
  const refresh = async () => {
    const ticket = ++latest
    const body = new FormData(form)
    const response = await fetch(editor.dataset.hysbysPreview, {
      method: 'POST', body, headers: { 'X-Requested-With': 'fetch' }, credentials: 'same-origin'
    })
    if (response.ok && ticket === latest) {
      target.innerHTML = await response.text()
      target.dataset.refreshes = String(Number(target.dataset.refreshes || 0) + 1)
    }
  }
  form.addEventListener('input', () => {
    clearTimeout(timer)
    timer = setTimeout(refresh, 250)
  })
}
